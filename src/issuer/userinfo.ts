import type { IssuerContext } from './context.js';
import { InvalidToken, OAuthError } from './errors.js';
import { profileClaims } from './grants/issue.js';
import { verifyOwnAccessToken } from './own_tokens.js';

/** OIDC Core §5.3 UserInfo: the claims the access token's scopes release. */
export async function userinfo(ctx: IssuerContext, authorization: string | undefined): Promise<Record<string, unknown>> {
  const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
  if (!match) {
    // RFC 6750 §3.1: no credentials, no error code in the challenge.
    const err = new InvalidToken('missing_bearer');
    err.headers['www-authenticate'] = 'Bearer';
    throw err;
  }
  const payload = await verifyOwnAccessToken(ctx, match[1]!);
  if (!payload) throw new InvalidToken('invalid_access_token');
  const scopes = String(payload.scope ?? '').split(' ');
  if (!scopes.includes('openid')) {
    const err = new OAuthError('insufficient_scope', 403, 'the access token lacks the openid scope');
    err.headers['www-authenticate'] = 'Bearer error="insufficient_scope", scope="openid"';
    throw err;
  }
  const user = await ctx.store.users.byId(payload.sub!);
  if (!user || user.disabled) throw new InvalidToken('user_gone');
  return { sub: user.id, ...profileClaims(user, scopes) };
}
