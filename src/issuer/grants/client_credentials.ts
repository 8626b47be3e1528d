import type { ClientRecord } from '../../store/index.js';
import type { IssuerContext } from '../context.js';
import { UnauthorizedClient } from '../errors.js';
import { audienceFor, grantedScope } from '../scope.js';
import { issueAccessToken, tokenType, type TokenResponse } from '../tokens.js';
import type { TokenRequest } from '../dpop_binding.js';

/** RFC 6749 §4.4: a confidential client acting on its own behalf; no refresh token. */
export async function clientCredentialsGrant(ctx: IssuerContext, client: ClientRecord, params: Record<string, string | undefined>, req: TokenRequest): Promise<TokenResponse> {
  if (client.type !== 'confidential' || !client.grantTypes.includes('client_credentials')) throw new UnauthorizedClient('the client may not use client_credentials');
  const scope = grantedScope(client, params.scope, client.scopes.filter((s) => s !== 'openid' && s !== 'offline_access')).join(' ');
  const audience = audienceFor(ctx.settings, params.resource);
  const access = await issueAccessToken(ctx, { sub: client.clientId, clientId: client.clientId, scope, roles: client.roles, amr: [], audience, jkt: req.jkt });
  return { access_token: access.token, token_type: tokenType(req.jkt), expires_in: access.expiresIn, scope };
}
