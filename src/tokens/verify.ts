import { hash, KeyObject } from 'node:crypto';
import type { JWSHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../lib/clock.js';
import { PortcullisError, withoutStack, type ErrorCode } from '../lib/errors.js';
import type { Metrics } from '../telemetry/metrics.js';
import { COMPACT_JWS, decodeCompactJws, type CompactJws } from './compact_jws.js';
import { keyFitsAlgorithm, signatureVerifies } from './jws_signature.js';
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
  const cache = cacheMaxEntries > 0 ? new LRUCache<string, Principal>({ max: cacheMaxEntries, perf: { now: () => clock.now() }, ttlResolution: 0, ttlAutopurge: false }) : undefined;

  async function verifyUncached(token: string, key: string): Promise<Principal> {
    if (!COMPACT_JWS.test(token)) throw fail('ERR_TOKEN_MALFORMED', 'not a compact JWS');
    let jws: CompactJws;
    try {
      jws = decodeCompactJws(token);
    } catch (cause) {
      throw fail('ERR_TOKEN_MALFORMED', 'undecodable header or payload', cause);
    }
    const { header, payload } = jws;
    if (header.kid !== undefined && typeof header.kid !== 'string') throw fail('ERR_TOKEN_MALFORMED', 'kid is not a string');
    // No JWS extension is understood (RFC 7515 §4.1.11), and the payload is always base64url (no RFC 7797 b64).
    if (header.crit !== undefined || header.b64 !== undefined) throw fail('ERR_TOKEN_MALFORMED', 'crit and b64 are not supported');
    const trusted = typeof payload.iss === 'string' ? byIssuer.get(payload.iss) : undefined;
    if (!trusted) throw fail('ERR_TOKEN_UNKNOWN_ISSUER', 'iss names no trusted issuer');
    const { policy } = trusted;
    const alg = header.alg;
    if (typeof alg !== 'string' || !policy.algorithms.includes(alg)) throw fail('ERR_TOKEN_ALG_NOT_ALLOWED', 'alg not in the issuer allow-list');

    const end = metrics.tokenVerifyLatency.startTimer({ issuer: policy.issuer });
    try {
      const candidates = await trusted.keys.keysFor(header as JWSHeaderParameters);
      let verified = false;
      for (const candidate of candidates) {
        const key = keyObject(candidate, alg);
        if (key !== undefined && (await signatureVerifies(alg, key, jws.signingInput, jws.signature))) {
          verified = true;
          break;
        }
      }
      if (!verified) throw fail('ERR_TOKEN_SIGNATURE', 'signature verification failed');
      checkClaims(header, payload, policy, Math.floor(clock.now() / 1000));
      const principal = principalFromClaims(payload, policy.issuer, policy);
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
      // One-shot hash: no Hash stream object per request.
      const key = cache ? hash('sha256', token, 'base64url') : '';
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

/** node:crypto key objects of the verification keys (jose's key sets hold WebCrypto keys), made once per key. */
const keyObjects = new WeakMap<object, KeyObject | null>();

/** The key as a node:crypto public key, when it fits `alg` (else it verifies nothing). */
function keyObject(key: VerifyKey, alg: string): KeyObject | undefined {
  let converted = keyObjects.get(key);
  if (converted === undefined) {
    try {
      converted = key instanceof KeyObject ? key : key instanceof Uint8Array ? null : KeyObject.from(key);
    } catch {
      converted = null;
    }
    keyObjects.set(key, converted);
  }
  return converted !== null && keyFitsAlgorithm(alg, converted) ? converted : undefined;
}

/** `application/at+jwt` and `at+jwt` are the same type (RFC 7515 §4.1.9); case does not matter. */
const normalizeTyp = (typ: string): string => (typ.includes('/') ? typ.toLowerCase() : `application/${typ.toLowerCase()}`);

/**
 * RFC 7519 / RFC 9068 claim checks after the signature verified: typ when the issuer requires
 * one, iss, aud (one of the configured audiences), sub, exp (required), nbf and iat, with the
 * issuer's clock skew on each side. `now` is in seconds.
 */
function checkClaims(header: Record<string, unknown>, payload: Record<string, unknown>, policy: IssuerPolicy, now: number): void {
  if (policy.required_typ !== undefined && (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== normalizeTyp(policy.required_typ))) {
    throw fail('ERR_TOKEN_CLAIM', 'typ is not the required token type');
  }
  if (payload.iss !== policy.issuer) throw fail('ERR_TOKEN_CLAIM', 'iss does not match');
  if (policy.audiences.length > 0) {
    const aud = payload.aud;
    const ok = typeof aud === 'string' ? policy.audiences.includes(aud) : Array.isArray(aud) && aud.some((a) => typeof a === 'string' && policy.audiences.includes(a));
    if (!ok) throw fail('ERR_TOKEN_CLAIM', 'aud names none of the accepted audiences');
  }
  if (typeof payload.sub !== 'string' || payload.sub === '') throw fail('ERR_TOKEN_CLAIM', 'sub must be a non-empty string');
  const skew = policy.clock_skew_seconds;
  const { exp, nbf, iat } = payload;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw fail('ERR_TOKEN_CLAIM', 'exp must be a number');
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) throw fail('ERR_TOKEN_CLAIM', 'nbf must be a number');
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) throw fail('ERR_TOKEN_CLAIM', 'iat must be a number');
  if (exp <= now - skew) throw fail('ERR_TOKEN_EXPIRED', 'exp is past');
  if (nbf !== undefined && nbf > now + skew) throw fail('ERR_TOKEN_NOT_YET_VALID', 'nbf is in the future');
  if (iat !== undefined && iat > now + skew) throw fail('ERR_TOKEN_CLAIM', 'iat is in the future');
}

/** A token refused: an expected outcome, built without a stack trace. */
function fail(code: ErrorCode, message: string, cause?: unknown): PortcullisError {
  return withoutStack(() => new PortcullisError(code, message, { cause }));
}
