import type { JSONWebKeySet, JWK } from 'jose';
import { FetchFailure } from './http_fetch.js';
import { PRIVATE_JWK_MEMBERS, rsaModulusBits } from './jwk_checks.js';

const MIN_RSA_BITS = 2048;
const MAX_KEYS = 100;

export interface FilteredJwks {
  jwks: JSONWebKeySet;
  /** Why each dropped key was dropped (kid and reason), for logs. */
  skipped: string[];
}

/**
 * Keeps the usable public signing keys of a JWKS document. Drops symmetric and private keys,
 * encryption keys, unknown key types and RSA keys under 2048 bits.
 */
export function filterJwks(doc: unknown): FilteredJwks {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new FetchFailure('invalid_document', 'JWKS document has no "keys" array');
  }
  const keys: JWK[] = [];
  const skipped: string[] = [];
  for (const raw of (doc as { keys: unknown[] }).keys.slice(0, MAX_KEYS)) {
    const reason = rejectReason(raw);
    const kid = typeof (raw as JWK)?.kid === 'string' ? (raw as JWK).kid!.slice(0, 64) : '(no kid)';
    if (reason) skipped.push(`${kid}: ${reason}`);
    else keys.push(raw as JWK);
  }
  return { jwks: { keys }, skipped };
}

function rejectReason(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const key = raw as Record<string, unknown>;
  if (typeof key.kty !== 'string') return 'no kty';
  if (!['RSA', 'EC', 'OKP'].includes(key.kty)) return `unsupported kty ${key.kty.slice(0, 16)}`;
  if (PRIVATE_JWK_MEMBERS.some((m) => m in key)) return 'holds private or symmetric material';
  if (key.use !== undefined && key.use !== 'sig') return 'not a signing key';
  if (key.kid !== undefined && typeof key.kid !== 'string') return 'kid is not a string';
  if (key.kty === 'RSA') {
    if (typeof key.n !== 'string' || typeof key.e !== 'string') return 'RSA key without n/e';
    const bits = rsaModulusBits(key.n);
    if (bits < MIN_RSA_BITS) return `RSA modulus of ${bits} bits is under ${MIN_RSA_BITS}`;
  }
  return undefined;
}
