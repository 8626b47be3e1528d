import { readFileSync } from 'node:fs';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import type { UpstreamProviderConfig } from '../../config/index.js';
import type { Clock } from '../../lib/clock.js';
import { PortcullisError } from '../../lib/errors.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Metrics } from '../../telemetry/metrics.js';
import { createRemoteKeySource, createTokenVerifier, type KeySource, type TokenVerifier } from '../../tokens/index.js';

/** A verified upstream JWT: its claims and the `typ` of its (signed) header. */
export interface VerifiedUpstreamJwt {
  claims: Readonly<Record<string, unknown>>;
  typ: string | undefined;
}

/**
 * One external OpenID provider: an openid-client configuration (discovery, PKCE, code exchange,
 * refresh) and the provider's keys through the project's own remote key source, so its ID tokens
 * and JWT access tokens are checked with the same bounded fetch, cooldown, stale rules and
 * metrics as the tokens of `issuers`.
 */
export interface UpstreamProvider {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  readonly settings: Readonly<UpstreamProviderConfig>;
  readonly keys: KeySource;
  /** The openid-client configuration; discovered on first use, and again after a failed discovery. */
  client(): Promise<oidc.Configuration>;
  /** Origin of the authorization endpoint once discovered (the login page's CSP `form-action`). */
  authorizationOrigin(): string | undefined;
  /** An ID token from the login: audience `client_id`. */
  verifyLoginIdToken(token: string): Promise<VerifiedUpstreamJwt>;
  /** A token presented for exchange: audience one of `token_exchange_audiences` (default `client_id`). */
  verifyExchangeJwt(token: string): Promise<VerifiedUpstreamJwt>;
  allowsExchange(clientId: string): boolean;
}

export interface UpstreamProviderDeps {
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** Key resolution emits `auth.oauth.fetch_jwks` spans (tracing on). */
  traced?: boolean;
}

export function createUpstreamProvider(p: Readonly<UpstreamProviderConfig>, deps: UpstreamProviderDeps): UpstreamProvider {
  const secret = p.client_secret ?? readSecretFile(p.id, p.client_secret_file!);
  const issuer = p.issuer;
  const keys = createRemoteKeySource({ issuer, discovery: true, audiences: [], algorithms: [...p.algorithms], clock_skew_seconds: 30, roles_claim: 'roles', scope_claim: 'scope', jwks: p.jwks }, deps);
  const verifier = (audiences: readonly string[]): TokenVerifier =>
    createTokenVerifier({
      issuers: [{ policy: { issuer, audiences, algorithms: p.algorithms, clock_skew_seconds: 30, roles_claim: p.claims.roles ?? 'roles', scope_claim: 'scope' }, keys }],
      clock: deps.clock,
      metrics: deps.metrics,
      cacheMaxEntries: 0,
    });
  const login = verifier([p.client_id]);
  const exchange = verifier(p.token_exchange_audiences.length ? p.token_exchange_audiences : [p.client_id]);
  const verify = async (v: TokenVerifier, token: string): Promise<VerifiedUpstreamJwt> => {
    const principal = await v.verify(token);
    return { claims: principal.claims, typ: decodeProtectedHeader(token).typ };
  };

  let discovered: Promise<oidc.Configuration> | undefined;
  let metadata: oidc.ServerMetadata | undefined;
  const auth = p.client_auth === 'client_secret_post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
  const discover = async (): Promise<oidc.Configuration> => {
    try {
      const config = await oidc.discovery(new URL(issuer), p.client_id, undefined, auth, {
        // http only reaches here outside production (the config refuses it there): loopback tests, local IdPs.
        execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
        timeout: Math.ceil(p.fetch_timeout_ms / 1000),
      });
      metadata = config.serverMetadata();
      return config;
    } catch (cause) {
      discovered = undefined;
      deps.logger.warn({ provider: p.id, err: (cause as Error).message }, 'upstream provider discovery failed');
      throw new PortcullisError('ERR_UPSTREAM', `discovery of upstream provider ${p.id} failed`, { cause });
    }
  };

  return {
    id: p.id,
    name: p.name,
    issuer,
    settings: p,
    keys,
    client: () => (discovered ??= discover()),
    authorizationOrigin: () => (metadata?.authorization_endpoint ? new URL(metadata.authorization_endpoint).origin : undefined),
    verifyLoginIdToken: (token) => verify(login, token),
    verifyExchangeJwt: (token) => verify(exchange, token),
    allowsExchange: (clientId) => p.token_exchange_clients.includes(clientId),
  };
}

function readSecretFile(id: string, file: string): string {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (!secret) throw new Error('the file is empty');
    return secret;
  } catch (cause) {
    throw new PortcullisError('ERR_CONFIG_INVALID', `upstream_providers ${id}: cannot read client_secret_file ${file}: ${(cause as Error).message}`, { cause });
  }
}
