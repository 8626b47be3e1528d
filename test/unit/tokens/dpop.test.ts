import { exportJWK } from 'jose';
import { beforeEach, describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../../src/cache/index.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { DpopError, createDpopNonces, createDpopVerifier, type DpopRequest, type DpopVerifier } from '../../../src/tokens/index.js';
import { makeDpopKey, type DpopKey } from '../../helpers/dpop.js';

const URL_ = 'https://api.example.com/documents/1';
const TOKEN = 'header.payload.signature';

let clock: ReturnType<typeof createManualClock>;
let verify: DpopVerifier;
let key: DpopKey;

const now = () => Math.floor(clock.now() / 1000);
const request = (proof: string, over: Partial<DpopRequest> = {}): DpopRequest => ({ proofs: [proof], method: 'GET', urls: [URL_], accessToken: TOKEN, boundJkt: key.jkt, ...over });
const reason = (p: Promise<unknown>) => p.then(() => 'accepted', (e: unknown) => (e instanceof DpopError ? e.reason : `unexpected: ${String(e)}`));

beforeEach(async () => {
  clock = createManualClock(Date.UTC(2026, 5, 1));
  verify = createDpopVerifier({ algorithms: ['ES256', 'EdDSA', 'RS256'], iatWindowSeconds: 60, maxProofBytes: 8192, replay: createMemoryCache({ clock }), clock });
  key = await makeDpopKey();
});

describe('DPoP proof verification (RFC 9449 §4.3)', () => {
  it('accepts a fresh proof for the request and returns the key thumbprint', async () => {
    const proof = await key.proof('GET', URL_, { accessToken: TOKEN, iat: now() });
    await expect(verify(request(proof))).resolves.toEqual({ jkt: key.jkt });
  });

  it('ignores the query and fragment and normalizes scheme, host case and default port in htu', async () => {
    const proof = await key.proof('GET', 'HTTPS://API.example.com:443/documents/1?x=1#f', { accessToken: TOKEN, iat: now() });
    await expect(verify(request(proof, { urls: ['https://api.example.com/documents/1?page=2'] }))).resolves.toEqual({ jkt: key.jkt });
  });

  it('compares htu after percent-encoding normalization (RFC 3986 §6.2.2): hex case, unreserved characters decoded, reserved ones kept', async () => {
    const decoded = await key.proof('GET', 'https://api.example.com/%64ocuments/%31', { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(decoded)))).toBe('accepted');
    const hexCase = await key.proof('GET', 'https://api.example.com/a%2fb', { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(hexCase, { urls: ['https://api.example.com/a%2Fb'] })))).toBe('accepted');
    const slash = await key.proof('GET', 'https://api.example.com/a%2Fb', { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(slash, { urls: ['https://api.example.com/a/b'] })))).toBe('htu_mismatch');
  });

  it('refuses an htu with userinfo, which names no request target (RFC 9110 §4.2.4)', async () => {
    const proof = await key.proof('GET', 'https://user:pw@api.example.com/documents/1', { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(proof)))).toBe('htu_mismatch');
  });

  it('accepts each proof once: a replay within the window is refused', async () => {
    const proof = await key.proof('GET', URL_, { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(proof)))).toBe('accepted');
    clock.advance(30_000);
    expect(await reason(verify(request(proof)))).toBe('replay');
  });

  it('does not record the jti of a proof that fails another check', async () => {
    const proof = await key.proof('GET', URL_, { accessToken: TOKEN, iat: now(), jti: 'same' });
    expect(await reason(verify(request(proof, { method: 'POST' })))).toBe('htm_mismatch');
    expect(await reason(verify(request(proof)))).toBe('accepted');
  });

  it.each([
    ['htm_mismatch', (k: DpopKey) => k.proof('POST', URL_, { accessToken: TOKEN, iat: now() })],
    ['htu_mismatch', (k: DpopKey) => k.proof('GET', 'https://api.example.com/documents/2', { accessToken: TOKEN, iat: now() })],
    ['htu_mismatch', (k: DpopKey) => k.proof('GET', 'https://evil.example.com/documents/1', { accessToken: TOKEN, iat: now() })],
    ['htu_mismatch', (k: DpopKey) => k.proof('GET', 'not a url', { accessToken: TOKEN, iat: now() })],
    ['iat_window', (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now() - 61 })],
    ['iat_window', (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now() + 61 })],
    ['ath_mismatch', (k: DpopKey) => k.proof('GET', URL_, { accessToken: 'another.token.value', iat: now() })],
    ['ath_mismatch', (k: DpopKey) => k.proof('GET', URL_, { iat: now() })],
    ['malformed', (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now(), typ: 'JWT' })],
    ['malformed', (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now(), jti: '' })],
    ['malformed', (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now(), jti: 'x'.repeat(257) })],
    ['malformed', async (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now(), jwk: await exportJWK(k.privateKey) })],
    ['bad_signature', async (k: DpopKey) => k.proof('GET', URL_, { accessToken: TOKEN, iat: now(), signWith: (await makeDpopKey()).privateKey })],
    ['bad_signature', async (k: DpopKey) => (await k.proof('GET', URL_, { accessToken: TOKEN, iat: now() })).replace(/.{4}$/, 'AAAA')],
  ] as const)('refuses with %s', async (expected, make) => {
    expect(await reason(verify(request(await make(key))))).toBe(expected);
  });

  it('refuses a proof signed by a key other than the one the token is bound to', async () => {
    const other = await makeDpopKey();
    const proof = await other.proof('GET', URL_, { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(proof)))).toBe('jkt_mismatch');
  });

  it('refuses a missing, repeated, oversized or non-JWS header before any parsing', async () => {
    const proof = await key.proof('GET', URL_, { accessToken: TOKEN, iat: now() });
    expect(await reason(verify(request(proof, { proofs: undefined })))).toBe('missing');
    expect(await reason(verify(request(proof, { proofs: [] })))).toBe('missing');
    expect(await reason(verify(request(proof, { proofs: [proof, proof] })))).toBe('malformed');
    expect(await reason(verify(request(`${proof}${'A'.repeat(8192)}`)))).toBe('malformed');
    expect(await reason(verify(request('not-a-jws')))).toBe('malformed');
    expect(await reason(verify(request('e30.e30.')))).toBe('malformed');
  });

  it('decodes a proof as strictly as an access token: a segment of impossible base64url length is malformed, before any signature check', async () => {
    const [header, payload, signature] = (await key.proof('GET', URL_, { accessToken: TOKEN, iat: now() })).split('.') as [string, string, string];
    const stretched = (segment: string) => segment + 'A'.repeat((((1 - (segment.length % 4)) % 4) + 4) % 4 || 4);
    for (const proof of [`${stretched(header)}.${payload}.${signature}`, `${header}.${stretched(payload)}.${signature}`, `${header}.${payload}.${stretched(signature)}`]) {
      expect(proof.split('.').some((segment) => segment.length % 4 === 1)).toBe(true);
      expect(await reason(verify(request(proof)))).toBe('malformed');
    }
    const array = Buffer.from('[]').toString('base64url');
    expect(await reason(verify(request(`${header}.${array}.${signature}`)))).toBe('malformed');
    expect(await reason(verify(request(`${array}.${payload}.${signature}`)))).toBe('malformed');
  });

  it('refuses algorithms outside the allow-list, HMAC and none included', async () => {
    const ps = await makeDpopKey('PS256');
    expect(await reason(verify(request(await ps.proof('GET', URL_, { accessToken: TOKEN, iat: now() }), { boundJkt: ps.jkt })))).toBe('malformed');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })).toString('base64url')}.${Buffer.from(JSON.stringify({ htm: 'GET', htu: URL_, iat: now(), jti: 'n' })).toString('base64url')}.`;
    expect(await reason(verify(request(none)))).toBe('malformed');
  });

  it('accepts EdDSA and RS256 keys', async () => {
    for (const alg of ['EdDSA', 'RS256'] as const) {
      const k = await makeDpopKey(alg);
      await expect(verify(request(await k.proof('GET', URL_, { accessToken: TOKEN, iat: now() }), { boundJkt: k.jkt }))).resolves.toEqual({ jkt: k.jkt });
    }
  });

  it('accepts the proof of a token request, which has no access token and no bound key', async () => {
    const proof = await key.proof('POST', 'https://id.example.com/oauth2/token', { iat: now() });
    await expect(verify({ proofs: [proof], method: 'POST', urls: ['https://id.example.com/oauth2/token'] })).resolves.toEqual({ jkt: key.jkt });
  });
});

describe('DPoP server nonces (RFC 9449 §8)', () => {
  it('requires a nonce it issued, accepts it for one to two lifetimes, then refuses it', async () => {
    const nonces = createDpopNonces({ lifetimeSeconds: 300, clock });
    const withNonce = createDpopVerifier({ algorithms: ['ES256'], iatWindowSeconds: 60, maxProofBytes: 8192, replay: createMemoryCache({ clock }), clock, nonces });
    const at = (nonce?: string) => key.proof('POST', URL_, { iat: now(), ...(nonce ? { nonce } : {}) });
    const req = async (nonce?: string) => reason(withNonce({ proofs: [await at(nonce)], method: 'POST', urls: [URL_] }));
    expect(await req()).toBe('nonce');
    expect(await req('0.forged')).toBe('nonce');
    const nonce = nonces.current();
    expect(await req(nonce)).toBe('accepted');
    clock.advance(300_000);
    expect(nonces.valid(nonce)).toBe(true);
    clock.advance(300_000);
    expect(nonces.valid(nonce)).toBe(false);
    expect(await req(nonce)).toBe('nonce');
  });

  it('accepts nonces of another instance with the same secret and refuses those of a different one', () => {
    const secret = Buffer.alloc(32, 7);
    const a = createDpopNonces({ secret, lifetimeSeconds: 60, clock });
    const b = createDpopNonces({ secret, lifetimeSeconds: 60, clock });
    const c = createDpopNonces({ secret: Buffer.alloc(32, 8), lifetimeSeconds: 60, clock });
    expect(b.valid(a.current())).toBe(true);
    expect(c.valid(a.current())).toBe(false);
    expect(a.valid('')).toBe(false);
    expect(a.valid('zzzzzzzzzzzz.AAAA')).toBe(false);
  });
});
