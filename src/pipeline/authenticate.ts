import { isPortcullisError } from '../lib/errors.js';
import type { Metrics } from '../telemetry/metrics.js';
import { DpopError, TOKEN_ERROR_DESCRIPTIONS, extractCredential, type DpopVerifier, type Principal, type TokenVerifier } from '../tokens/index.js';
import type { AuthzInput, Deny } from './types.js';

/** The DPoP side of authentication: proof verification and where `htu` may point. */
export interface SenderConstraint {
  verify: DpopVerifier;
  /** Origins (`https://api.example.com`) a proof's `htu` may name; empty: the request's scheme and host. */
  origins: readonly string[];
  /** Advertised in the DPoP challenge (`algs`). */
  algorithms: readonly string[];
}

export type AuthnDeny = Pick<Deny, 'status' | 'reason' | 'code' | 'description' | 'challenge'>;
export type Authn = { principal: Principal | undefined } | { deny: AuthnDeny };

export interface AuthenticatorOptions {
  verifier: TokenVerifier;
  metrics: Metrics;
  realm: string;
  /** Off: a `DPoP` scheme is no credential, and DPoP-bound tokens are refused. */
  dpop: SenderConstraint | undefined;
}

/**
 * Credential -> Principal. A bearer token must not be DPoP-bound; a DPoP token must be bound and
 * come with a valid proof for this request (RFC 9449 §7). Failures are 401 denials whose
 * challenge names the scheme that was used.
 */
export function createAuthenticator({ verifier, metrics, realm, dpop }: AuthenticatorOptions): (input: AuthzInput) => Promise<Authn> {
  const bearer = `Bearer realm="${realm}"`;
  const dpopScheme = dpop ? `DPoP algs="${dpop.algorithms.join(' ')}"` : '';
  const rejected = (reason: string) => metrics.dpopRejected.inc({ reason });
  const invalid = (scheme: string, code: string, description: string, error = 'invalid_token'): { deny: AuthnDeny } => ({
    deny: { status: 401, reason: 'invalid_token', code, description, challenge: `${scheme}, error="${error}", error_description="${description}"` },
  });

  return async function authenticate(input) {
    const credential = extractCredential(input.headers.get('authorization'));
    if (credential.kind === 'none' || (credential.kind === 'dpop' && !dpop)) return { principal: undefined };
    if (credential.kind === 'invalid') return invalid(bearer, 'ERR_TOKEN_MALFORMED', 'invalid authorization header');
    const scheme = credential.kind === 'dpop' ? dpopScheme : bearer;
    let principal: Principal;
    try {
      principal = await verifier.verify(credential.token);
    } catch (err) {
      if (!isPortcullisError(err)) throw err;
      return invalid(scheme, err.code, TOKEN_ERROR_DESCRIPTIONS[err.code] ?? 'invalid token');
    }
    if (credential.kind === 'bearer') {
      if (principal.boundJkt === undefined) return { principal };
      rejected('bearer_scheme');
      return invalid(bearer, 'ERR_TOKEN_DPOP', 'DPoP-bound token presented as a bearer token');
    }
    if (principal.boundJkt === undefined) return invalid(dpopScheme, 'ERR_TOKEN_DPOP', 'token is not DPoP-bound');
    try {
      await dpop!.verify({ proofs: input.headers.get('dpop'), method: input.method, urls: requestUrls(input, dpop!.origins), accessToken: credential.token, boundJkt: principal.boundJkt });
    } catch (err) {
      if (!(err instanceof DpopError)) throw err;
      rejected(err.reason);
      return invalid(dpopScheme, err.code, 'invalid DPoP proof', 'invalid_dpop_proof');
    }
    return { principal };
  };
}

/** The URLs the proof's `htu` may name: each origin with the request's path (query dropped). */
function requestUrls(input: AuthzInput, origins: readonly string[]): string[] {
  const q = input.path.indexOf('?');
  const path = q === -1 ? input.path : input.path.slice(0, q);
  const from = origins.length ? origins : input.scheme && input.host ? [`${input.scheme}://${input.host}`] : [];
  return from.map((o) => `${o.replace(/\/$/, '')}${path}`);
}
