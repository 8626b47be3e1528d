import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { signJws, signingKeyObject, type SigningAlg } from '../../../src/issuer/jws.js';
import { isPortcullisError } from '../../../src/lib/errors.js';

const keyPair = (alg: SigningAlg) => generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });

describe('signJws (node:crypto compact JWS)', () => {
  it.each(['ES256', 'EdDSA', 'RS256'] as const)('signs %s tokens that jose verifies, header and claims intact', async (alg) => {
    const { privateKey, publicKey } = await keyPair(alg);
    const key = signingKeyObject(await exportJWK(privateKey), alg);
    const now = Math.floor(Date.now() / 1000);
    const token = signJws(alg, key, { typ: 'at+jwt', kid: 'k1' }, { iss: 'https://id.example', sub: 'alice', aud: 'api', iat: now, exp: now + 60, roles: ['viewer'], cnf: { jkt: 'x' } });
    const { payload, protectedHeader } = await jwtVerify(token, publicKey, { issuer: 'https://id.example', audience: 'api', typ: 'at+jwt', algorithms: [alg] });
    expect(protectedHeader).toEqual({ typ: 'at+jwt', kid: 'k1', alg });
    expect(payload).toMatchObject({ sub: 'alice', roles: ['viewer'], cnf: { jkt: 'x' } });
  });

  it('produces a signature jose refuses once any part is altered', async () => {
    const { privateKey, publicKey } = await keyPair('ES256');
    const token = signJws('ES256', signingKeyObject(await exportJWK(privateKey), 'ES256'), {}, { sub: 'alice' });
    const [h, p, s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'mallory' })).toString('base64url')}.${s}`;
    await expect(jwtVerify(forged, publicKey)).rejects.toThrow();
    expect(decodeProtectedHeader(`${h}.${p}.${s}`).alg).toBe('ES256');
  });

  it('sets alg itself: a header cannot claim another algorithm', async () => {
    const { privateKey } = await keyPair('ES256');
    const token = signJws('ES256', signingKeyObject(await exportJWK(privateKey), 'ES256'), { alg: 'none' }, {});
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
  });

  it('refuses a key that does not fit the algorithm, and a public key', async () => {
    const ec = await exportJWK((await keyPair('ES256')).privateKey);
    const refused = (f: () => unknown) => {
      try {
        f();
        return 'accepted';
      } catch (err) {
        return isPortcullisError(err, 'ERR_KEYS_UNAVAILABLE') ? 'refused' : String(err);
      }
    };
    expect(refused(() => signingKeyObject(ec, 'RS256'))).toBe('refused');
    expect(refused(() => signingKeyObject(ec, 'EdDSA'))).toBe('refused');
    expect(refused(() => signingKeyObject({ ...ec, d: undefined }, 'ES256'))).toBe('refused');
    expect(refused(() => signingKeyObject({ ...ec, crv: 'P-384' }, 'ES256'))).toBe('refused');
  });
});
