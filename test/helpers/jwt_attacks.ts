import { createHmac, generateKeyPairSync, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { CompactSign, FlattenedSign, exportJWK, type JWK } from 'jose';
import type { SigningKey } from '../helpers/jwks_server.js';

/** Token builders for the JWT attack corpus: raw compact serialisation, so nothing normalises the attack. */

export const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Signs any header and payload (unknown `crit` extensions included) with a key of the issuer. */
export async function signRaw(key: SigningKey, header: Record<string, unknown>, payload: Record<string, unknown>, crit?: Record<string, boolean>): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: key.alg, ...header } as { alg: string })
    .sign(key.privateKey, crit ? { crit } : undefined);
}

/** A compact JWS with an unencoded payload (RFC 7797 `b64: false`) of base64url-safe characters. */
export async function unencodedPayload(key: SigningKey, header: Record<string, unknown>, payload: string): Promise<string> {
  const jws = await new FlattenedSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: key.alg, ...header, b64: false, crit: ['b64'] } as { alg: string }).sign(key.privateKey);
  return `${jws.protected}.${jws.payload}.${jws.signature}`;
}

/** Replaces the signature of a compact JWS. */
export const withSignature = (jwt: string, signature: Uint8Array | string): string => {
  const [h, p] = jwt.split('.');
  return `${h}.${p}.${typeof signature === 'string' ? signature : Buffer.from(signature).toString('base64url')}`;
};

export const unsigned = (header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string => `${b64(header)}.${b64(payload)}.${signature}`;

export function hmacSigned(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | Buffer): string {
  const data = `${b64(header)}.${b64(payload)}`;
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`;
}

/** The order n of P-256: r = s = n is the classic out-of-range ECDSA signature. */
const P256_ORDER = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');
export const rEqualsSEqualsN = (): Buffer => Buffer.concat([P256_ORDER, P256_ORDER]);

/** A raw (r || s) ES256 signature re-encoded as ASN.1 DER, as OpenSSL would produce it. */
export function toDer(raw: Uint8Array): Buffer {
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(Buffer.from(raw.subarray(0, 32))), int(Buffer.from(raw.subarray(32)))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** An RSA key under 2048 bits, as a JWK for the JWKS and a signer for tokens naming it. */
export async function weakRsa(kid: string): Promise<{ jwk: JWK; sign(header: Record<string, unknown>, payload: Record<string, unknown>): string }> {
  const pair = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' };
  const priv = createPrivateKey(pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return {
    jwk,
    sign: (header, payload) => {
      const data = `${b64({ alg: 'RS256', kid, ...header })}.${b64(payload)}`;
      return `${data}.${cryptoSign('sha256', Buffer.from(data), priv).toString('base64url')}`;
    },
  };
}
