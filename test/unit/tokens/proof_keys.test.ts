import { createHash, generateKeyPairSync } from 'node:crypto';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { createProofKeys, jwkThumbprint, UnusableKey } from '../../../src/tokens/proof_keys.js';

const ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const;

async function pair(alg: (typeof ALGS)[number]) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { privateKey, jwk: await exportJWK(publicKey) };
}

const parts = (jws: string) => {
  const i = jws.lastIndexOf('.');
  return { data: Buffer.from(jws.slice(0, i)), signature: Buffer.from(jws.slice(i + 1), 'base64url') };
};

describe('proof keys (node:crypto)', () => {
  it.each(ALGS)('verifies %s signatures made by jose, and refuses a changed byte', async (alg) => {
    const { privateKey, jwk } = await pair(alg);
    const jws = await new CompactSign(Buffer.from('{"jti":"x"}')).setProtectedHeader({ alg }).sign(privateKey);
    const keys = createProofKeys();
    const { key, jkt } = keys.resolve(jwk, alg);
    expect(jkt).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
    const { data, signature } = parts(jws);
    expect(await keys.verifies(alg, key, data, signature)).toBe(true);
    data[data.length - 1] = data[data.length - 1]! ^ 1;
    expect(await keys.verifies(alg, key, data, signature)).toBe(false);
  });

  it('computes RFC 7638 thumbprints: the RFC example and jose agree', async () => {
    // RFC 7638 §3.1
    const rfc: JWK = { kty: 'RSA', e: 'AQAB', alg: 'RS256', kid: '2011-04-29', n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw' };
    expect(jwkThumbprint(rfc)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const { jwk } = await pair(alg);
      expect(jwkThumbprint({ ...jwk, use: 'sig', kid: 'ignored' })).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
    }
  });

  it('refuses keys that do not fit the algorithm, weak RSA keys and incomplete keys', async () => {
    const keys = createProofKeys();
    const unusable = (jwk: JWK, alg: string) => {
      try {
        keys.resolve(jwk, alg);
        return 'accepted';
      } catch (err) {
        return err instanceof UnusableKey ? 'unusable' : String(err);
      }
    };
    const p256 = (await pair('ES256')).jwk;
    const p384 = (await pair('ES384')).jwk;
    const rsa = (await pair('RS256')).jwk;
    expect(unusable(p384, 'ES256')).toBe('unusable');
    expect(unusable(p256, 'ES384')).toBe('unusable');
    expect(unusable(p256, 'RS256')).toBe('unusable');
    expect(unusable(rsa, 'ES256')).toBe('unusable');
    expect(unusable(rsa, 'EdDSA')).toBe('unusable');
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK;
    expect(unusable(weak, 'RS256')).toBe('unusable');
    expect(unusable((await pair('PS256')).jwk, 'PS256')).toBe('accepted');
    expect(unusable({ kty: 'EC', crv: 'P-256', x: p256.x }, 'ES256')).toBe('unusable');
    expect(unusable({ kty: 'EC', crv: 'P-256', x: p256.x, y: 'AAAA' }, 'ES256')).toBe('unusable');
    expect(unusable({ kty: 'oct', k: 'c2VjcmV0' }, 'ES256')).toBe('unusable');
    expect(unusable(p256, 'HS256')).toBe('unusable');
    expect(unusable(p256, 'none')).toBe('unusable');
  });

  it('refuses an ECDSA signature of the wrong length, and a DER-encoded one', async () => {
    const { privateKey, jwk } = await pair('ES256');
    const jws = await new CompactSign(Buffer.from('{}')).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    const keys = createProofKeys();
    const { key } = keys.resolve(jwk, 'ES256');
    const { data, signature } = parts(jws);
    expect(await keys.verifies('ES256', key, data, Buffer.concat([signature, Buffer.alloc(1)]))).toBe(false);
    expect(await keys.verifies('ES256', key, data, Buffer.alloc(64))).toBe(false);
    const r = signature.subarray(0, 32);
    const s = signature.subarray(32);
    const int = (b: Buffer) => (b[0]! & 0x80 ? Buffer.concat([Buffer.from([0x02, b.length + 1, 0]), b]) : Buffer.concat([Buffer.from([0x02, b.length]), b]));
    const der = Buffer.concat([Buffer.from([0x30, int(r).length + int(s).length]), int(r), int(s)]);
    expect(await keys.verifies('ES256', key, data, der)).toBe(false);
  });

  it('imports a key once and answers later proofs of the same key from the cache', async () => {
    const { jwk } = await pair('ES256');
    const keys = createProofKeys();
    const first = keys.resolve(jwk, 'ES256');
    expect(keys.resolve({ ...jwk }, 'ES256')).toBe(first);
    expect(createHash('sha256').update('x').digest('base64url')).toHaveLength(43);
  });
});
