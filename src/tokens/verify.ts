import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWSHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../lib/clock.js';
import { PortcullisError, type ErrorCode } from '../lib/errors.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { KeySource, VerifyKey } from './key_source.js';
import { principalFromClaims, type ClaimMapping, type Principal } from './principal.js';

/** The verification rules of one trusted issuer. */
export interface IssuerPolicy extends ClaimMapping {
  issuer: string;
  audiences: readonly string[];
  algorithms: readonly string[];
  clock_skew_seconds: number;
  required_typ?: string | undefined;
}

export interface TrustedIssuer {
  policy: IssuerPolicy;
  keys: KeySource;
  /** Revocation by `jti` (the embedded token module's, checked in memory on every use). */
  isRevoked?: (jti: string) => boolean;
}

export interface TokenVerifierOptions {
  issuers: readonly TrustedIssuer[];
  clock: Clock;
  metrics: Metrics;
  /** Verified tokens kept; 0 disables the cache. */
  cacheMaxEntries: number;
  /** Longest token accepted (UTF-8 bytes), refused before any parsing or hashing. Default 16 KiB. */
  maxTokenBytes?: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
  issuers(): readonly TrustedIssuer[];
  /** Trusts one more issuer (the embedded token module, once its URL is known). */
  addIssuer(issuer: TrustedIssuer): void;
}

/** Default longest token accepted before any parsing (config `limits.max_token_bytes`). */
export const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Short descriptions safe to send to clients (`error_description`). */
export const TOKEN_ERROR_DESCRIPTIONS: Partial<Record<ErrorCode, string>> = {
  ERR_TOKEN_MALFORMED: 'malformed token',
  ERR_TOKEN_TOO_LARGE: 'token too large',
  ERR_TOKEN_UNKNOWN_ISSUER: 'untrusted issuer',
  ERR_TOKEN_ALG_NOT_ALLOWED: 'algorithm not allowed',
  ERR_TOKEN_KEY_NOT_FOUND: 'signing key not found',
  ERR_KEYS_UNAVAILABLE: 'signing keys unavailable',
  ERR_TOKEN_SIGNATURE: 'invalid signature',
  ERR_TOKEN_EXPIRED: 'token expired',
  ERR_TOKEN_NOT_YET_VALID: 'token not yet valid',
  ERR_TOKEN_CLAIM: 'invalid token claims',
  ERR_TOKEN_REVOKED: 'token revoked',
};

export function createTokenVerifier({ issuers, clock, metrics, cacheMaxEntries, maxTokenBytes = MAX_TOKEN_LENGTH }: TokenVerifierOptions): TokenVerifier {
  const all = [...issuers];
  const byIssuer = new Map(all.map((i) => [i.policy.issuer, i]));
  const revoked = (p: Principal): boolean => {
    const check = byIssuer.get(p.issuer)?.isRevoked;
    return check !== undefined && typeof p.claims.jti === 'string' && check(p.claims.jti);
  };
  const cache = cacheMaxEntries > 0 ? new LRUCache<string, Principal>({ max: cacheMaxEntries, perf: { now: () => clock.now() }, ttlAutopurge: false }) : undefined;

  async function verifyUncached(token: string, key: string): Promise<Principal> {
    if (!COMPACT_JWS.test(token)) throw fail('ERR_TOKEN_MALFORMED', 'not a compact JWS');
    let header: JWSHeaderParameters;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (cause) {
      throw fail('ERR_TOKEN_MALFORMED', 'undecodable header or payload', cause);
    }
    if (header.kid !== undefined && typeof header.kid !== 'string') throw fail('ERR_TOKEN_MALFORMED', 'kid is not a string');
    const trusted = typeof unverified.iss === 'string' ? byIssuer.get(unverified.iss) : undefined;
    if (!trusted) throw fail('ERR_TOKEN_UNKNOWN_ISSUER', 'iss names no trusted issuer');
    const { policy } = trusted;
    if (typeof header.alg !== 'string' || !policy.algorithms.includes(header.alg)) throw fail('ERR_TOKEN_ALG_NOT_ALLOWED', 'alg not in the issuer allow-list');

    const end = metrics.tokenVerifyLatency.startTimer({ issuer: policy.issuer });
    try {
      const candidates = await trusted.keys.keysFor(header);
      const payload = await verifyWithAny(token, candidates, policy, clock);
      if (typeof payload.sub !== 'string' || payload.sub === '') throw fail('ERR_TOKEN_CLAIM', 'sub must be a non-empty string');
      if (typeof payload.iat === 'number' && payload.iat * 1000 > clock.now() + policy.clock_skew_seconds * 1000) {
        throw fail('ERR_TOKEN_CLAIM', 'iat is in the future');
      }
      const principal = principalFromClaims(payload as Record<string, unknown>, policy.issuer, policy);
      if (revoked(principal)) throw fail('ERR_TOKEN_REVOKED', 'the token was revoked');
      const ttl = principal.expiresAt - clock.now();
      if (cache && ttl > 0) cache.set(key, principal, { ttl });
      return principal;
    } finally {
      end();
    }
  }

  return {
    async verify(token: string): Promise<Principal> {
      if (token.length > maxTokenBytes || Buffer.byteLength(token) > maxTokenBytes) {
        metrics.tokenRejected.inc({ reason: 'ERR_TOKEN_TOO_LARGE' });
        metrics.limitExceeded.inc({ limit: 'token' });
        throw fail('ERR_TOKEN_TOO_LARGE', `token longer than ${maxTokenBytes} bytes (limits.max_token_bytes)`);
      }
      const key = cache ? createHash('sha256').update(token).digest('base64url') : '';
      const hit = cache?.get(key);
      if (hit) {
        metrics.tokenCacheHits.inc();
        if (!revoked(hit)) return hit;
        cache!.delete(key);
      }
      try {
        return await verifyUncached(token, key);
      } catch (err) {
        const mapped = err instanceof PortcullisError ? err : fail('ERR_TOKEN_INVALID', 'verification failed', err);
        metrics.tokenRejected.inc({ reason: mapped.code });
        throw mapped;
      }
    },
    issuers: () => all,
    addIssuer(issuer) {
      if (byIssuer.has(issuer.policy.issuer)) throw new PortcullisError('ERR_CONFIG_INVALID', `issuer ${issuer.policy.issuer} is already trusted`);
      all.push(issuer);
      byIssuer.set(issuer.policy.issuer, issuer);
    },
  };
}

async function verifyWithAny(token: string, keys: readonly VerifyKey[], policy: IssuerPolicy, clock: Clock): Promise<JWTPayload> {
  let last: unknown;
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], {
        issuer: policy.issuer,
        audience: policy.audiences.length ? [...policy.audiences] : undefined,
        algorithms: [...policy.algorithms],
        clockTolerance: policy.clock_skew_seconds,
        currentDate: new Date(clock.now()),
        typ: policy.required_typ,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    } catch (err) {
      last = err;
      if (!(err instanceof errors.JWSSignatureVerificationFailed)) break;
    }
  }
  throw mapJoseError(last);
}

function mapJoseError(err: unknown): PortcullisError {
  if (err instanceof PortcullisError) return err;
  if (err instanceof errors.JWTExpired) return fail('ERR_TOKEN_EXPIRED', 'exp is past', err);
  if (err instanceof errors.JWTClaimValidationFailed) {
    return err.claim === 'nbf' ? fail('ERR_TOKEN_NOT_YET_VALID', 'nbf is in the future', err) : fail('ERR_TOKEN_CLAIM', `claim ${err.claim} failed: ${err.reason}`, err);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('ERR_TOKEN_SIGNATURE', 'signature verification failed', err);
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('ERR_TOKEN_ALG_NOT_ALLOWED', 'alg not allowed', err);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) {
    return fail('ERR_TOKEN_MALFORMED', (err as Error).message, err);
  }
  return fail('ERR_TOKEN_INVALID', 'verification failed', err);
}

function fail(code: ErrorCode, message: string, cause?: unknown): PortcullisError {
  return new PortcullisError(code, message, { cause });
}
