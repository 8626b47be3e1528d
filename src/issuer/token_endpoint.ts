import type { IssuerContext } from './context.js';
import { authenticateClient, type ClientCredentials } from './client_auth.js';
import { InvalidRequest, UnsupportedGrantType } from './errors.js';
import { authorizationCodeGrant } from './grants/authorization_code.js';
import { clientCredentialsGrant } from './grants/client_credentials.js';
import { refreshTokenGrant } from './grants/refresh_token.js';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from './grants/token_exchange.js';
import type { TokenResponse } from './tokens.js';
import { tokenRequestKey } from './dpop_binding.js';
import { inSpan } from '../telemetry/tracing.js';

const GRANTS = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
  [TOKEN_EXCHANGE_GRANT]: tokenExchangeGrant,
} as const;

/**
 * `POST /oauth2/token`: authenticate the client, check a DPoP proof when one is sent (the tokens
 * are then bound to its key), then run the grant it names.
 */
export async function tokenEndpoint(ctx: IssuerContext, creds: ClientCredentials, ip: string | null, dpopProofs?: readonly string[]): Promise<TokenResponse> {
  const grantType = creds.body.grant_type;
  if (!grantType) throw new InvalidRequest('grant_type is required');
  if (!Object.hasOwn(GRANTS, grantType)) throw new UnsupportedGrantType();
  const client = await authenticateClient(ctx, creds, [`${ctx.issuer()}/oauth2/token`, ctx.issuer()]);
  const jkt = await tokenRequestKey(ctx, dpopProofs);
  const end = ctx.metrics.tokenIssuance.startTimer({ grant_type: grantType });
  try {
    const grant = GRANTS[grantType as keyof typeof GRANTS];
    const response = await inSpan('auth.token.issue', { 'oauth.grant_type': grantType, 'oauth.client_id': client.clientId }, () => grant(ctx, client, creds.body, { ip, jkt }));
    await ctx.audit.record('token.issued', 'success', { clientId: client.clientId, ip, details: { grant_type: grantType, scope: response.scope, token_type: response.token_type } });
    return response;
  } catch (err) {
    await ctx.audit.record('token.issued', 'failure', { clientId: client.clientId, ip, reason: (err as { reason?: string }).reason ?? 'error', details: { grant_type: grantType } });
    throw err;
  } finally {
    end();
  }
}
