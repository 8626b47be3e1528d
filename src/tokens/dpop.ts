import { hash } from 'node:crypto';
import type { JWK } from 'jose';
import type { Cache } from '../cache/index.js';
import type { Clock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import { COMPACT_JWS, decodeCompactJws, UndecodableJws, type CompactJws } from './compact_jws.js';
import type { DpopNonces } from './dpop_nonce.js';
import { PRIVATE_JWK_MEMBERS } from './jwk_checks.js';
import { createProofKeys, UnusableKey } from './proof_keys.js';

/** Why a proof was refused: bounded, used as the `reason` label of `auth_dpop_proofs_rejected_total`. */
export type DpopRejectReason =
  | 'missing'
  | 'malformed'
  | 'bad_signature'
  | 'htm_mismatch'
  | 'htu_mismatch'
  | 'iat_window'
  | 'ath_mismatch'
  | 'jkt_mismatch'
  | 'replay'
  | 'nonce'
  | 'bearer_scheme';

/** A refused proof; `reason` is internal (metrics, logs), the client sees a generic description. */
export class DpopError extends PortcullisError {
  readonly reason: DpopRejectReason;

  constructor(reason: DpopRejectReason, message: string, cause?: unknown) {
    super(reason === 'nonce' ? 'ERR_DPOP_NONCE' : 'ERR_DPOP_PROOF', message, { cause });
    this.name = 'DpopError';
    this.reason = reason;
  }
}

export interface DpopProofOptions {
  /** Asymmetric algorithms a proof may use (never `none` or HMAC). */
  algorithms: readonly string[];
  /** Accepted distance of `iat` from now, either way. */
  iatWindowSeconds: number;
  maxProofBytes: number;
  /** Remembers proof `jti`s so each is accepted once. */
  replay: Cache;
  clock: Clock;
  /** When set, a proof must carry a `nonce` these issued. */
  nonces?: DpopNonces | undefined;
}

export interface DpopRequest {
  /** Every `DPoP` header value of the request. */
  proofs: readonly string[] | undefined;
  method: string;
  /** URLs the proof's `htu` may name (query and fragment ignored on both sides). */
  urls: readonly string[];
  /** The access token presented with the proof (checked against `ath`). */
  accessToken?: string | undefined;
  /** The key the access token is bound to (`cnf.jkt`). */
  boundJkt?: string | undefined;
}

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key. */
  jkt: string;
}

export type DpopVerifier = (request: DpopRequest) => Promise<VerifiedProof>;

/**
 * RFC 9449 §4.3 proof checks, in order: one well-formed `dpop+jwt` with a public `jwk` and an
 * allowed algorithm, a valid signature by that key, `htm`, `htu`, `iat` window, `ath`, the token's
 * `cnf.jkt`, the nonce when required; only then is the `jti` recorded (one atomic add), so proofs
 * that fail any other check never fill the replay cache.
 */
export function createDpopVerifier(o: DpopProofOptions): DpopVerifier {
  const replayTtlMs = (2 * o.iatWindowSeconds + 5) * 1000;
  const keys = createProofKeys();
  return async function verifyDpopProof(req) {
    if (!req.proofs || req.proofs.length === 0) throw new DpopError('missing', 'no DPoP proof');
    if (req.proofs.length > 1) throw new DpopError('malformed', 'more than one DPoP header');
    const proof = req.proofs[0]!;
    if (proof.length > o.maxProofBytes || !COMPACT_JWS.test(proof)) throw new DpopError('malformed', 'not a compact JWS within the size limit');
    let jws: CompactJws;
    try {
      jws = decodeCompactJws(proof);
    } catch (cause) {
      if (cause instanceof UndecodableJws) throw new DpopError('malformed', `undecodable proof: ${cause.message}`, cause);
      throw cause;
    }
    const { jwk, alg } = proofHeader(jws.header, o.algorithms);
    const { payload, jkt } = await verifiedPayload(jws, jwk, alg, keys);
    if (payload.htm !== req.method) throw new DpopError('htm_mismatch', 'htm does not match the request method');
    const htu = withoutQuery(payload.htu as string);
    if (htu === undefined || !req.urls.some((u) => withoutQuery(u) === htu)) throw new DpopError('htu_mismatch', 'htu does not match the request URL');
    const now = o.clock.now() / 1000;
    if (Math.abs(now - (payload.iat as number)) > o.iatWindowSeconds) throw new DpopError('iat_window', 'iat is outside the accepted window');
    if (req.accessToken !== undefined && payload.ath !== sha256(req.accessToken)) throw new DpopError('ath_mismatch', 'ath does not match the access token');
    if (req.boundJkt !== undefined && jkt !== req.boundJkt) throw new DpopError('jkt_mismatch', 'the proof key is not the key the token is bound to');
    if (o.nonces && (typeof payload.nonce !== 'string' || !o.nonces.valid(payload.nonce))) throw new DpopError('nonce', 'a fresh server nonce is required');
    if (!(await o.replay.addOnce(`dpop:${sha256(`${jkt}:${payload.jti as string}`)}`, replayTtlMs))) throw new DpopError('replay', 'the proof was already used');
    return { jkt };
  };
}

function proofHeader(header: Record<string, unknown>, algorithms: readonly string[]): { jwk: JWK; alg: string } {
  if (header.typ !== 'dpop+jwt') throw new DpopError('malformed', 'typ must be dpop+jwt');
  // No JWS extension is understood (RFC 7515 §4.1.11), and the payload is always base64url (no RFC 7797 b64).
  if (header.crit !== undefined || header.b64 !== undefined) throw new DpopError('malformed', 'crit and b64 are not supported');
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) throw new DpopError('malformed', 'alg is not allowed');
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw new DpopError('malformed', 'jwk header is required');
  if (PRIVATE_JWK_MEMBERS.some((m) => Object.hasOwn(jwk, m))) throw new DpopError('malformed', 'jwk must be a public key');
  return { jwk, alg: header.alg };
}

async function verifiedPayload(jws: CompactJws, jwk: JWK, alg: string, keys: ReturnType<typeof createProofKeys>): Promise<{ payload: Record<string, unknown>; jkt: string }> {
  let key: ReturnType<typeof keys.resolve>;
  try {
    key = keys.resolve(jwk, alg);
  } catch (cause) {
    if (cause instanceof UnusableKey) throw new DpopError('malformed', `unusable proof key: ${cause.message}`, cause);
    throw cause;
  }
  if (!(await keys.verifies(alg, key.key, jws.signingInput, jws.signature))) throw new DpopError('bad_signature', 'the proof signature does not verify with its jwk');
  const p = jws.payload;
  if (typeof p.jti !== 'string' || p.jti.length === 0 || p.jti.length > 256) throw new DpopError('malformed', 'jti is required');
  if (typeof p.htm !== 'string' || typeof p.htu !== 'string') throw new DpopError('malformed', 'htm and htu are required');
  if (typeof p.iat !== 'number' || !Number.isFinite(p.iat)) throw new DpopError('malformed', 'iat must be a number');
  return { payload: p, jkt: key.jkt };
}

/**
 * The URL without query and fragment, normalized as RFC 9449 §4.3 asks (RFC 3986 §6.2.2–6.2.3):
 * scheme and host lower case, default port and dot segments dropped (URL parsing does these),
 * percent-encodings in upper-case hex with unreserved characters decoded. A URL with userinfo
 * names no HTTP request target (RFC 9110 §4.2.4) and matches nothing.
 */
function withoutQuery(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.username !== '' || u.password !== '') return undefined;
  const path = u.pathname.replace(/%[0-9A-Fa-f]{2}/g, (e) => {
    const c = String.fromCharCode(Number.parseInt(e.slice(1), 16));
    return /^[A-Za-z0-9._~-]$/.test(c) ? c : e.toUpperCase();
  });
  return `${u.protocol}//${u.host}${path}`;
}

/** `ath`: base64url SHA-256 of the access token's ASCII. */
export function sha256(value: string): string {
  return hash('sha256', value, 'base64url');
}
