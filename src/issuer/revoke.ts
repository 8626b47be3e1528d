import type { IssuerContext } from './context.js';
import { authenticateClient, type ClientCredentials } from './client_auth.js';
import { InvalidRequest } from './errors.js';
import { verifyOwnAccessToken } from './own_tokens.js';
import { sha256 } from './secrets.js';

/**
 * RFC 7009 revocation. A refresh token revokes its whole family; an access token is revoked by
 * `jti` until it expires (the ext_authz path and introspection see it at once). Tokens of other
 * clients and unknown tokens are ignored: the answer is 200 either way.
 */
export async function revoke(ctx: IssuerContext, creds: ClientCredentials, ip: string | null): Promise<void> {
  const client = await authenticateClient(ctx, creds, [`${ctx.issuer()}/oauth2/revoke`, ctx.issuer()]);
  const token = creds.body.token;
  if (!token) throw new InvalidRequest('token is required');
  const now = ctx.clock.now();
  const refresh = await ctx.store.refresh.lookup(sha256(token));
  if (refresh && refresh.family.clientId === client.clientId) {
    await ctx.store.refresh.revokeFamily(refresh.family.id, now, 'revoked');
    await ctx.audit.record('token.revoked', 'success', { userId: refresh.family.userId, clientId: client.clientId, ip, details: { token_type: 'refresh_token' } });
    return;
  }
  const access = await verifyOwnAccessToken(ctx, token);
  if (access && access.client_id === client.clientId) {
    await ctx.revoked.revoke(access.jti!, access.exp! * 1000);
    await ctx.audit.record('token.revoked', 'success', { userId: access.sub === client.clientId ? null : access.sub, clientId: client.clientId, ip, details: { token_type: 'access_token' } });
  }
}
