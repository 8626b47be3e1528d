import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/** A client's DPoP key pair and the proofs it signs (RFC 9449 §4.2), with knobs to break each part. */
export interface DpopKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint: what a bound token carries in `cnf.jkt`. */
  jkt: string;
  alg: string;
  proof(htm: string, htu: string, options?: ProofOptions): Promise<string>;
}

export interface ProofOptions {
  accessToken?: string;
  /** Seconds since the epoch; now by default. */
  iat?: number;
  jti?: string;
  nonce?: string;
  typ?: string;
  /** Put this JWK in the header instead of the public key (e.g. a private one). */
  jwk?: JWK;
  /** Sign with this key instead (the header still names `jwk`). */
  signWith?: CryptoKey;
  /** Set `ath` to this value instead of the token's hash. */
  ath?: string;
  extra?: Record<string, unknown>;
}

export const ath = (token: string): string => createHash('sha256').update(token).digest('base64url');

export async function makeDpopKey(alg: 'ES256' | 'EdDSA' | 'RS256' | 'PS256' = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(publicJwk, 'sha256');
  return {
    privateKey,
    publicKey,
    publicJwk,
    jkt,
    alg,
    async proof(htm, htu, o = {}) {
      const claims: Record<string, unknown> = { htm, htu, jti: o.jti ?? randomUUID(), ...o.extra };
      if (o.accessToken !== undefined || o.ath !== undefined) claims.ath = o.ath ?? ath(o.accessToken!);
      if (o.nonce !== undefined) claims.nonce = o.nonce;
      return new SignJWT(claims)
        .setProtectedHeader({ alg, typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? publicJwk })
        .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
        .sign(o.signWith ?? privateKey);
    },
  };
}
