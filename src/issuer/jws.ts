import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { PortcullisError } from '../lib/errors.js';

/** Algorithms the token module signs with. */
export type SigningAlg = 'ES256' | 'EdDSA' | 'RS256';

/**
 * Compact JWS (RFC 7515 §7.1) signed through node:crypto with a KeyObject. Signing a token is
 * the token endpoint's main CPU cost, and node:crypto signs ES256 about 2.5 times faster than the
 * WebCrypto path jose takes. `alg` (and `kid` when given) are set here whatever `header` says.
 */
export function signJws(alg: SigningAlg, key: KeyObject, header: Record<string, unknown>, payload: Record<string, unknown>, kid?: string): string {
  // Built by assignment: a spread of the header plus added members costs a new hidden class per token.
  const protectedHeader: Record<string, unknown> = { alg };
  if (kid !== undefined) protectedHeader.kid = kid;
  for (const name of Object.keys(header)) if (name !== 'alg' && (kid === undefined || name !== 'kid')) protectedHeader[name] = header[name];
  const input = `${b64(JSON.stringify(protectedHeader))}.${b64(JSON.stringify(payload))}`;
  const data = Buffer.from(input);
  const signature = alg === 'ES256' ? sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }) : alg === 'RS256' ? sign('sha256', data, key) : sign(null, data, key);
  return `${input}.${signature.toString('base64url')}`;
}

/** The private KeyObject of a signing key's JWK, checked to fit the algorithm. */
export function signingKeyObject(jwk: JWK, alg: SigningAlg): KeyObject {
  const fits = (alg === 'ES256' && jwk.kty === 'EC' && jwk.crv === 'P-256') || (alg === 'RS256' && jwk.kty === 'RSA') || (alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519');
  if (!fits || typeof jwk.d !== 'string') throw new PortcullisError('ERR_KEYS_UNAVAILABLE', `signing key does not fit ${alg}`);
  return createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');
