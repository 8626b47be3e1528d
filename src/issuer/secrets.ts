import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh random secret (256 bits by default), base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256, base64url: how high-entropy secrets (refresh tokens, codes, client secrets) are stored. */
export function sha256(value: string): string {
  return hash('sha256', value, 'base64url');
}

/** Constant-time string comparison (lengths are compared through their digests). */
export function safeEqual(a: string, b: string): boolean {
  const da = hash('sha256', a, 'buffer');
  const db = hash('sha256', b, 'buffer');
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** A keyed hash for identifiers that reach telemetry (user ids): stable, not reversible without the key. */
export function keyedHash(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url').slice(0, 22);
}
