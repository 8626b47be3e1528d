import type { ClientRecord } from '../../store/index.js';
import type { IssuerContext } from '../context.js';
import { UnauthorizedClient } from '../errors.js';
import { audienceFor, grantedScope } from '../scope.js';
import { issueAccessToken, type TokenResponse } from '../tokens.js';

/** RFC 6749 §4.4: a confidential client acting on its own behalf; no refresh token. */
export async function clientCredentialsGrant(ctx: IssuerContext, client: ClientRecord, params: Record<string, string | undefined>): Promise<TokenResponse> {
  if (client.type !== 'confidential' || !client.grantTypes.includes('client_credentials')) throw new UnauthorizedClient('the client may not use client_credentials');
  const scope = grantedScope(client, params.scope, client.scopes.filter((s) => s !== 'openid' && s !== 'offline_access')).join(' ');
  const audience = audienceFor(ctx.settings, params.resource);
  const access = await issueAccessToken(ctx, { sub: client.clientId, clientId: client.clientId, scope, roles: client.roles, amr: [], audience });
  return { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope };
}
