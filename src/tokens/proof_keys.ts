import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { rsaModulusBits } from './jwk_checks.js';
import { ALGORITHM_FAMILIES, signatureVerifies } from './jws_signature.js';

/** Why a proof key is unusable (DPoP maps these to `malformed`). */
export class UnusableKey extends Error {}

export interface ProofKey {
  /** RFC 7638 SHA-256 thumbprint (what a bound token carries in `cnf.jkt`). */
  jkt: string;
  key: KeyObject;
}

/** The members RFC 7638 §3.2 hashes, in lexicographic order, per key type. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };

/** RFC 7638 SHA-256 thumbprint of a public JWK; throws UnusableKey when a required member is missing. */
export function jwkThumbprint(jwk: JWK): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''];
  if (!members) throw new UnusableKey(`unsupported key type ${String(jwk.kty)}`);
  const canonical: Record<string, string> = {};
  for (const m of members) {
    const v = (jwk as Record<string, unknown>)[m];
    if (typeof v !== 'string' || v === '') throw new UnusableKey(`jwk member ${m} is required`);
    canonical[m] = v;
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

/**
 * Proof keys through node:crypto, imported once per key (clients sign every proof with the same
 * one) and checked to fit the algorithm: curve per ECDSA algorithm, Ed25519 for EdDSA, RSA of at
 * least 2048 bits. Verification is node:crypto's, on the thread pool (see `signatureVerifies`).
 */
export function createProofKeys(maxEntries = 10_000) {
  const cache = new LRUCache<string, ProofKey>({ max: maxEntries });

  function resolve(jwk: JWK, alg: string): ProofKey {
    const family = ALGORITHM_FAMILIES[alg];
    if (!family) throw new UnusableKey(`unsupported algorithm ${alg}`);
    if (jwk.kty !== family.kty || (family.crv !== undefined && jwk.crv !== family.crv)) throw new UnusableKey(`a ${String(jwk.kty)} ${String(jwk.crv ?? '')} key does not fit ${alg}`);
    const jkt = jwkThumbprint(jwk);
    const hit = cache.get(jkt);
    if (hit) return hit;
    if (family.kty === 'RSA' && rsaModulusBits(jwk.n!) < 2048) throw new UnusableKey('RSA keys need a modulus of 2048 bits or more');
    let key: KeyObject;
    try {
      const members = Object.fromEntries(THUMBPRINT_MEMBERS[family.kty]!.map((m) => [m, (jwk as Record<string, unknown>)[m]]));
      key = createPublicKey({ key: members as import('node:crypto').JsonWebKey, format: 'jwk' });
    } catch (cause) {
      throw new UnusableKey(`invalid ${family.kty} key: ${(cause as Error).message}`);
    }
    const entry = { jkt, key };
    cache.set(jkt, entry);
    return entry;
  }

  /** Whether `signature` over `data` verifies with the key for `alg` (already resolved for it). */
  const verifies = (alg: string, key: KeyObject, data: Buffer, signature: Buffer): Promise<boolean> => signatureVerifies(alg, key, data, signature);

  return { resolve, verifies };
}
