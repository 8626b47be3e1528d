import type { IssuerContext } from './context.js';
import { authenticateClient, type ClientCredentials } from './client_auth.js';
import { InvalidClient, InvalidRequest } from './errors.js';
import { verifyOwnAccessToken } from './own_tokens.js';
import { sha256 } from './secrets.js';

/**
 * RFC 7662 introspection, for authenticated confidential clients (resource servers). Access
 * tokens are answered for any such client; refresh tokens only for the client they belong to.
 */
export async function introspect(ctx: IssuerContext, creds: ClientCredentials): Promise<Record<string, unknown>> {
  const client = await authenticateClient(ctx, creds, [`${ctx.issuer()}/oauth2/introspect`, ctx.issuer()]);
  if (client.type !== 'confidential') throw new InvalidClient('public_client_introspection');
  const token = creds.body.token;
  if (!token) throw new InvalidRequest('token is required');
  const hint = creds.body.token_type_hint;
  const asAccess = async () => {
    const p = await verifyOwnAccessToken(ctx, token);
    // RFC 9449 §6.2: a bound token is introspected with its confirmation and token type.
    const cnf = p?.cnf as { jkt?: string } | undefined;
    return p && { active: true, token_type: cnf?.jkt ? 'DPoP' : 'Bearer', iss: p.iss, sub: p.sub, aud: p.aud, client_id: p.client_id, scope: p.scope, exp: p.exp, iat: p.iat, jti: p.jti, roles: p.roles, ...(cnf?.jkt ? { cnf: { jkt: cnf.jkt } } : {}) };
  };
  const asRefresh = async () => {
    const found = await ctx.store.refresh.lookup(sha256(token));
    const now = ctx.clock.now();
    if (!found || found.family.clientId !== client.clientId) return undefined;
    const { token: t, family: f } = found;
    if (t.consumedAt !== null || f.revokedAt !== null || t.idleExpiresAt <= now || f.absoluteExpiresAt <= now) return undefined;
    return { active: true, token_type: 'refresh_token', iss: ctx.issuer(), sub: f.userId ?? undefined, client_id: f.clientId, scope: f.scope, exp: Math.floor(t.idleExpiresAt / 1000), iat: Math.floor(t.createdAt / 1000), ...(f.jkt ? { cnf: { jkt: f.jkt } } : {}) };
  };
  const order = hint === 'refresh_token' ? [asRefresh, asAccess] : [asAccess, asRefresh];
  for (const attempt of order) {
    const answer = await attempt();
    if (answer) return answer;
  }
  return { active: false };
}
