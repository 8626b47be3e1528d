import type { ClientRecord, UserRecord } from '../../store/index.js';
import type { IssuerContext } from '../context.js';
import { startFamily } from '../refresh.js';
import { issueAccessToken, issueIdToken, tokenType, type TokenResponse } from '../tokens.js';

export interface UserGrant {
  client: ClientRecord;
  user: UserRecord;
  scope: string;
  audience: string;
  resource: string | null;
  amr: string[];
  /** Seconds since the epoch. */
  authTime: number;
  nonce: string | null;
  /** The DPoP key of the request: binds the access token, and a public client's new refresh family. */
  jkt: string | undefined;
  /** Continue this refresh family (rotation) instead of starting one. */
  refresh?: { token: string; familyId: string } | undefined;
}

/** Access token, ID token (with `openid`) and refresh token (when the client may refresh) for a user. */
export async function issueUserTokens(ctx: IssuerContext, g: UserGrant): Promise<{ response: TokenResponse; jti: string; familyId: string | null }> {
  const access = await issueAccessToken(ctx, { sub: g.user.id, clientId: g.client.clientId, scope: g.scope, roles: g.user.roles, amr: g.amr, audience: g.audience, authTime: g.authTime, jkt: g.jkt });
  const response: TokenResponse = { access_token: access.token, token_type: tokenType(g.jkt), expires_in: access.expiresIn, scope: g.scope };
  const scopes = g.scope.split(' ');
  if (scopes.includes('openid')) {
    response.id_token = await issueIdToken(ctx, { sub: g.user.id, clientId: g.client.clientId, nonce: g.nonce, amr: g.amr, authTime: g.authTime, accessToken: access.token, profile: profileClaims(g.user, scopes) });
  }
  let familyId: string | null = null;
  if (g.refresh) {
    response.refresh_token = g.refresh.token;
    familyId = g.refresh.familyId;
  } else if (g.client.grantTypes.includes('refresh_token')) {
    const started = await startFamily(ctx, { client: g.client, userId: g.user.id, scope: g.scope, resource: g.resource, amr: g.amr, authTime: g.authTime, jkt: g.client.type === 'public' ? g.jkt : undefined });
    response.refresh_token = started.token;
    familyId = started.familyId;
  }
  return { response, jti: access.jti, familyId };
}

/** Claims released per scope (OIDC Core §5.4), in ID tokens and at /userinfo. */
export function profileClaims(user: UserRecord, scopes: readonly string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  if (scopes.includes('profile')) {
    claims.preferred_username = user.username;
    if (user.name) claims.name = user.name;
  }
  if (scopes.includes('email') && user.email) {
    claims.email = user.email;
    claims.email_verified = false;
  }
  return claims;
}
