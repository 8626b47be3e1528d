import * as oidc from 'openid-client';
import { isPortcullisError } from '../../lib/errors.js';
import { externalIdentity, type ExternalIdentity } from './identity.js';
import type { UpstreamProvider } from './provider.js';

/** What the login page keeps (server-side, in the interaction) between the redirect to the provider and its callback. */
export interface PendingUpstream extends Record<string, string> {
  provider: string;
  state: string;
  nonce: string;
  verifier: string;
}

/** Why a login through a provider failed: metric label and audit reason, never shown to the user. */
export type UpstreamFailure = 'upstream_denied' | 'upstream_error' | 'upstream_unavailable' | 'invalid_id_token' | 'invalid_identity';

export class UpstreamLoginFailed extends Error {
  constructor(
    readonly reason: UpstreamFailure,
    options?: { cause?: unknown },
  ) {
    super(`upstream login failed: ${reason}`, options);
  }
}

/** The callback URL registered at the provider for this Portcullis. */
export const upstreamCallbackUrl = (issuer: string, providerId: string): string => `${issuer}/oauth2/upstream/${providerId}/callback`;

/** The authorization request to the provider: PKCE (S256), `state` and `nonce`, fresh for each attempt. */
export async function upstreamAuthorizationUrl(provider: UpstreamProvider, redirectUri: string): Promise<{ url: string; pending: PendingUpstream }> {
  let config: oidc.Configuration;
  try {
    config = await provider.client();
  } catch (cause) {
    throw new UpstreamLoginFailed('upstream_unavailable', { cause });
  }
  const pending: PendingUpstream = { provider: provider.id, state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
  const url = oidc.buildAuthorizationUrl(config, {
    ...provider.settings.authorization_params,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: provider.settings.scopes.join(' '),
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
    code_challenge_method: 'S256',
  });
  return { url: url.href, pending };
}

export interface UpstreamLoginResult {
  identity: ExternalIdentity;
  refreshToken: string | undefined;
  /** Seconds, when the provider says how long its refresh token lives (`refresh_expires_in`). */
  refreshExpiresIn: number | undefined;
}

/**
 * Finishes the login at the callback: openid-client checks the response (`state`, `iss`), redeems
 * the code with the PKCE verifier and checks the ID token claims (`iss`, `aud`, `azp`, `exp`,
 * `nonce`); the ID token signature is then verified through the provider's key source (the shared
 * JWKS cache). Claims from userinfo complete it when configured.
 */
export async function finishUpstreamLogin(provider: UpstreamProvider, pending: PendingUpstream, callbackUrl: URL): Promise<UpstreamLoginResult> {
  let config: oidc.Configuration;
  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  try {
    config = await provider.client();
    tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true });
  } catch (cause) {
    if (isPortcullisError(cause, 'ERR_UPSTREAM')) throw new UpstreamLoginFailed('upstream_unavailable', { cause });
    throw new UpstreamLoginFailed(cause instanceof oidc.AuthorizationResponseError ? 'upstream_denied' : 'upstream_error', { cause });
  }
  let claims: Record<string, unknown>;
  try {
    claims = { ...(await provider.verifyLoginIdToken(tokens.id_token!)).claims };
  } catch (cause) {
    throw new UpstreamLoginFailed('invalid_id_token', { cause });
  }
  if (provider.settings.userinfo && config.serverMetadata().userinfo_endpoint) {
    try {
      // openid-client refuses a userinfo answer about another subject.
      claims = { ...claims, ...(await oidc.fetchUserInfo(config, tokens.access_token, String(claims.sub))), sub: claims.sub };
    } catch (cause) {
      throw new UpstreamLoginFailed('upstream_error', { cause });
    }
  }
  const identity = externalIdentity(provider, claims);
  if (!identity) throw new UpstreamLoginFailed('invalid_identity');
  const refreshExpiresIn = typeof tokens.refresh_expires_in === 'number' ? tokens.refresh_expires_in : undefined;
  return { identity, refreshToken: tokens.refresh_token, refreshExpiresIn };
}
