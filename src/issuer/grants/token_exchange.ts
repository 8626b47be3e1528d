import { decodeJwt } from 'jose';
import type { ClientRecord } from '../../store/index.js';
import { MAX_TOKEN_LENGTH } from '../../tokens/index.js';
import type { IssuerContext } from '../context.js';
import { InvalidRequest, UnauthorizedClient } from '../errors.js';
import { audienceFor, grantedScope } from '../scope.js';
import { issueAccessToken, tokenType, type TokenResponse } from '../tokens.js';
import type { TokenRequest } from '../dpop_binding.js';
import { externalIdentity } from '../upstream/identity.js';
import { mapExternalIdentity, UnmappedIdentity } from '../upstream/mapping.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

/** Every problem with the subject token gets this one answer (RFC 8693 §2.2.2); `reason` is for the audit log. */
const badSubject = (reason: string) => new InvalidRequest('the subject_token is invalid, expired, or not accepted', reason);

/**
 * RFC 8693 token exchange: a confidential client listed in a provider's `token_exchange_clients`
 * presents that provider's ID token or RFC 9068 JWT access token and receives a Portcullis access
 * token for the user the account maps to (the same mapping as login: link, verified email,
 * provisioning). The subject token is verified through the provider's key source: signature,
 * `iss`, `aud` in `token_exchange_audiences`, `exp`, algorithm allow-list, and `typ: at+jwt` for
 * access tokens (so an ID token cannot pass as one, nor the reverse). Opaque access tokens are not
 * accepted. No refresh token and no ID token are issued.
 */
export async function tokenExchangeGrant(ctx: IssuerContext, client: ClientRecord, params: Record<string, string | undefined>, { ip, jkt }: TokenRequest): Promise<TokenResponse> {
  if (client.type !== 'confidential' || !ctx.upstream.list.some((p) => p.allowsExchange(client.clientId))) throw new UnauthorizedClient('the client may not use token exchange');
  const { subject_token: token, subject_token_type: type } = params;
  if (!token) throw new InvalidRequest('subject_token is required');
  if (type !== ACCESS_TOKEN_TYPE && type !== ID_TOKEN_TYPE) throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE} or ${ID_TOKEN_TYPE}`);
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) throw new InvalidRequest('actor_token is not supported');
  if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) throw new InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
  if (params.resource !== undefined && params.audience !== undefined) throw new InvalidRequest('use resource or audience, not both');
  const scope = grantedScope(client, params.scope, client.scopes.filter((s) => s !== 'openid' && s !== 'offline_access')).join(' ');
  const audience = audienceFor(ctx.settings, params.resource ?? params.audience);
  if (token.length > MAX_TOKEN_LENGTH) throw badSubject('subject_token_malformed');

  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    throw badSubject('subject_token_not_jwt');
  }
  const provider = typeof iss === 'string' ? ctx.upstream.byIssuer(iss) : undefined;
  if (!provider) throw badSubject('subject_token_unknown_issuer');
  if (!provider.allowsExchange(client.clientId)) throw new UnauthorizedClient('the client may not exchange tokens of this issuer');
  let verified;
  try {
    verified = await provider.verifyExchangeJwt(token);
  } catch (err) {
    throw badSubject(`subject_token_${String((err as { code?: string }).code ?? 'invalid').replace(/^ERR_TOKEN_/, '').toLowerCase()}`);
  }
  const isAccessToken = /^(application\/)?at\+jwt$/i.test(verified.typ ?? '');
  if (isAccessToken !== (type === ACCESS_TOKEN_TYPE)) throw badSubject('subject_token_type_mismatch');
  const identity = externalIdentity(provider, verified.claims);
  if (!identity) throw badSubject('subject_token_identity');

  const details = { provider: provider.id, subject_token_type: type === ACCESS_TOKEN_TYPE ? 'access_token' : 'id_token' };
  let user;
  try {
    ({ user } = await mapExternalIdentity(ctx, provider, identity, ip));
  } catch (err) {
    if (!(err instanceof UnmappedIdentity)) throw err;
    await ctx.audit.record('token.exchange', 'failure', { clientId: client.clientId, ip, reason: err.reason, details });
    throw badSubject(err.reason);
  }
  if (user.disabled) throw badSubject('user_disabled');
  const access = await issueAccessToken(ctx, { sub: user.id, clientId: client.clientId, scope, roles: user.roles, amr: ['fed'], audience, jkt });
  await ctx.audit.record('token.exchange', 'success', { userId: user.id, clientId: client.clientId, ip, details: { ...details, scope, audience } });
  return { access_token: access.token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: tokenType(jkt), expires_in: access.expiresIn, scope };
}
