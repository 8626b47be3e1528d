import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CompactSign, SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createManualClock } from '../../../src/lib/clock.js';
import { PortcullisError } from '../../../src/lib/errors.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { decodeCompactJws, UndecodableJws } from '../../../src/tokens/compact_jws.js';
import { createLocalKeySource } from '../../../src/tokens/local_keys.js';
import { keyFitsAlgorithm } from '../../../src/tokens/jws_signature.js';
import { createTokenVerifier, type IssuerPolicy } from '../../../src/tokens/verify.js';

/**
 * The access-token verifier (node:crypto signatures, own claim checks) against tokens signed by
 * jose: every algorithm family, several candidate keys, and each claim rule at its boundary.
 */

const ISS = 'https://idp.test';
const clock = createManualClock(Date.UTC(2026, 11, 2, 12, 0, 0));
const NOW = Math.floor(clock.now() / 1000);

interface Key { alg: string; kid: string; privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; jwk: JWK }
async function key(alg: string, kid: string, options?: Parameters<typeof generateKeyPair>[1]): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, options);
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const policy = (over: Partial<IssuerPolicy> = {}): IssuerPolicy => ({
  issuer: ISS,
  audiences: ['api'],
  algorithms: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
  clock_skew_seconds: 30,
  roles_claim: 'roles',
  scope_claim: 'scope',
  ...over,
});

function verifier(keys: readonly JWK[], over: Partial<IssuerPolicy> = {}) {
  return createTokenVerifier({ issuers: [{ policy: policy(over), keys: createLocalKeySource({ keys: [...keys] }) }], clock, metrics: createMetrics(), cacheMaxEntries: 0 });
}

const claims = (over: Record<string, unknown> = {}) => ({ iss: ISS, aud: 'api', sub: 'alice', iat: NOW, exp: NOW + 600, ...over });

async function sign(k: Key, payload: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: k.alg, kid: k.kid, ...header }).sign(k.privateKey);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    return err instanceof PortcullisError ? err.code : `not a PortcullisError: ${String(err)}`;
  }
}

describe('createTokenVerifier with node:crypto signatures', () => {
  it.each([
    ['ES256', undefined],
    ['ES384', undefined],
    ['RS256', { modulusLength: 2048 }],
    ['PS256', { modulusLength: 2048 }],
    ['EdDSA', { crv: 'Ed25519' }],
  ] as const)('accepts a %s token and refuses it with one signature byte changed', async (alg, options) => {
    const k = await key(alg, `k-${alg}`, options as never);
    const v = verifier([k.jwk]);
    const token = await new SignJWT({ roles: ['viewer'] }).setProtectedHeader({ alg, kid: k.kid }).setIssuer(ISS).setAudience('api').setSubject('alice').setIssuedAt(NOW).setExpirationTime(NOW + 600).sign(k.privateKey);
    const principal = await v.verify(token);
    expect(principal).toMatchObject({ subject: 'alice', issuer: ISS, roles: ['viewer'], expiresAt: (NOW + 600) * 1000 });
    const sig = Buffer.from(token.split('.')[2]!, 'base64url');
    sig[5]! ^= 1;
    expect(await codeOf(v.verify(`${token.slice(0, token.lastIndexOf('.'))}.${sig.toString('base64url')}`))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('refuses garbage with a coded error that carries no stack trace (an expected outcome, not a bug)', async () => {
    const k = await key('ES256', 'k');
    const err = (await verifier([k.jwk]).verify('not.a.token').catch((e: unknown) => e)) as PortcullisError;
    expect(err).toBeInstanceOf(PortcullisError);
    expect(err.code).toBe('ERR_TOKEN_MALFORMED');
    expect(err.cause).toBeInstanceOf(UndecodableJws);
    expect(err.stack?.split('\n').filter((l) => l.trim().startsWith('at '))).toEqual([]);
  });

  it('tries every key when the header names no kid, and refuses a token no key verifies', async () => {
    const [a, b, other] = await Promise.all([key('ES256', 'a'), key('ES256', 'b'), key('ES256', 'x')]);
    const v = verifier([a.jwk, b.jwk]);
    expect(await codeOf(v.verify(await sign(b, claims(), { kid: undefined })))).toBe('accepted');
    expect(await codeOf(v.verify(await sign(other, claims(), { kid: undefined })))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('checks typ in its media-type forms, case-insensitively', async () => {
    const k = await key('ES256', 'k');
    const v = verifier([k.jwk], { required_typ: 'at+jwt' });
    expect(await codeOf(v.verify(await sign(k, claims(), { typ: 'at+jwt' })))).toBe('accepted');
    expect(await codeOf(v.verify(await sign(k, claims(), { typ: 'Application/AT+JWT' })))).toBe('accepted');
    expect(await codeOf(v.verify(await sign(k, claims(), { typ: 'JWT' })))).toBe('ERR_TOKEN_CLAIM');
    expect(await codeOf(v.verify(await sign(k, claims())))).toBe('ERR_TOKEN_CLAIM');
  });

  it('accepts an aud array naming one accepted audience and refuses others', async () => {
    const k = await key('ES256', 'k');
    const v = verifier([k.jwk], { audiences: ['api', 'api2'] });
    expect(await codeOf(v.verify(await sign(k, claims({ aud: ['x', 'api2'] }))))).toBe('accepted');
    expect(await codeOf(v.verify(await sign(k, claims({ aud: ['x', 'y'] }))))).toBe('ERR_TOKEN_CLAIM');
    expect(await codeOf(v.verify(await sign(k, claims({ aud: 7 }))))).toBe('ERR_TOKEN_CLAIM');
    expect(await codeOf(verifier([k.jwk], { audiences: [] }).verify(await sign(k, claims({ aud: undefined }))))).toBe('accepted');
  });

  it('applies the clock skew to exp, nbf and iat at their boundaries', async () => {
    const k = await key('ES256', 'k');
    const v = verifier([k.jwk], { clock_skew_seconds: 30 });
    const code = async (over: Record<string, unknown>) => codeOf(v.verify(await sign(k, claims(over))));
    expect(await code({ exp: NOW - 29 })).toBe('accepted');
    expect(await code({ exp: NOW - 30 })).toBe('ERR_TOKEN_EXPIRED');
    expect(await code({ nbf: NOW + 30 })).toBe('accepted');
    expect(await code({ nbf: NOW + 31 })).toBe('ERR_TOKEN_NOT_YET_VALID');
    expect(await code({ iat: NOW + 30 })).toBe('accepted');
    expect(await code({ iat: NOW + 31 })).toBe('ERR_TOKEN_CLAIM');
    expect(await code({ nbf: '0' })).toBe('ERR_TOKEN_CLAIM');
    expect(await code({ iat: null })).toBe('ERR_TOKEN_CLAIM');
    expect(await code({ exp: undefined })).toBe('ERR_TOKEN_CLAIM');
    expect(await code({ sub: '' })).toBe('ERR_TOKEN_CLAIM');
  });

  it('refuses crit and b64 headers, and a signature segment that is not base64url', async () => {
    const k = await key('ES256', 'k');
    const v = verifier([k.jwk]);
    expect(await codeOf(v.verify(await sign(k, claims(), { b64: true })))).toBe('ERR_TOKEN_MALFORMED');
    const token = await sign(k, claims());
    // An ES256 signature is 86 characters: 3 more make 4n+1 (not base64 at all); 1 more decodes to
    // 65 bytes, which is no raw ECDSA signature (no second string verifies as the same token).
    expect(await codeOf(v.verify(`${token}AAA`))).toBe('ERR_TOKEN_MALFORMED');
    expect(await codeOf(v.verify(`${token}A`))).toBe('ERR_TOKEN_SIGNATURE');
    expect(await codeOf(v.verify(token))).toBe('accepted');
  });
});

describe('decodeCompactJws', () => {
  const seg = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

  it('decodes header, payload, signing input and signature', () => {
    const jws = decodeCompactJws(`${seg({ alg: 'ES256' })}.${seg({ sub: 'a' })}.${seg('sig')}`);
    expect(jws.header).toEqual({ alg: 'ES256' });
    expect(jws.payload).toEqual({ sub: 'a' });
    expect(jws.signingInput.toString()).toBe(`${seg({ alg: 'ES256' })}.${seg({ sub: 'a' })}`);
    expect(jws.signature.toString()).toBe('sig');
  });

  it.each([
    ['a header that is an array', `${seg([1])}.${seg({})}.${seg('s')}`],
    ['a payload that is a string', `${seg({})}.${seg('"x"')}.${seg('s')}`],
    ['a payload that is null', `${seg({})}.${seg('null')}.${seg('s')}`],
    ['invalid UTF-8', `${Buffer.from([0xff, 0xfe]).toString('base64url')}.${seg({})}.${seg('s')}`],
    ['a segment of length 4n+1', `${seg({})}A.${seg({})}.${seg('s')}`],
    ['two segments', `${seg({})}.${seg({})}`],
    ['an empty signature', `${seg({})}.${seg({})}.`],
    ['text that is not JSON', `${seg('{not json')}.${seg({})}.${seg('s')}`],
  ])('refuses %s', (_name, token) => {
    expect(() => decodeCompactJws(token)).toThrow(UndecodableJws);
  });

  it('says why, keeps the JSON error as the cause, and captures no stack trace (an expected outcome)', () => {
    const refusal = (token: string) => {
      try {
        decodeCompactJws(token);
      } catch (err) {
        return err as UndecodableJws;
      }
      throw new Error('decoded');
    };
    const notUtf8 = refusal(`${Buffer.from([0xff, 0xfe]).toString('base64url')}.${seg({})}.${seg('s')}`);
    expect(notUtf8.message).toBe('header is not UTF-8');
    const notJson = refusal(`${seg({})}.${seg('{not json')}.${seg('s')}`);
    expect(notJson.message).toBe('payload is not JSON');
    expect(notJson.cause).toBeInstanceOf(SyntaxError);
    for (const err of [notUtf8, notJson, notJson.cause as Error]) expect(err.stack?.split('\n').filter((l) => l.trim().startsWith('at '))).toEqual([]);
    // Other errors keep their traces.
    expect(new Error('unexpected').stack).toMatch(/\n\s+at /);
  });

  it('decodes a header with a byte order mark as before (the decoder drops it)', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ alg: 'ES256' }))]).toString('base64url');
    expect(decodeCompactJws(`${bom}.${seg({})}.${seg('s')}`).header).toEqual({ alg: 'ES256' });
  });
});

describe('keyFitsAlgorithm', () => {
  const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });
  it('accepts public keys of the algorithm family and curve only', () => {
    const p256 = ec('P-256');
    const p384 = ec('P-384');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    expect(keyFitsAlgorithm('ES256', p256.publicKey)).toBe(true);
    expect(keyFitsAlgorithm('ES256', p384.publicKey)).toBe(false);
    expect(keyFitsAlgorithm('ES384', p384.publicKey)).toBe(true);
    expect(keyFitsAlgorithm('ES256', rsa.publicKey)).toBe(false);
    expect(keyFitsAlgorithm('RS256', rsa.publicKey)).toBe(true);
    expect(keyFitsAlgorithm('PS256', rsa.publicKey)).toBe(true);
    expect(keyFitsAlgorithm('RS256', p256.publicKey)).toBe(false);
    expect(keyFitsAlgorithm('EdDSA', ed.publicKey)).toBe(true);
    expect(keyFitsAlgorithm('EdDSA', p256.publicKey)).toBe(false);
    expect(keyFitsAlgorithm('ES256', p256.privateKey)).toBe(false);
    expect(keyFitsAlgorithm('HS256', p256.publicKey)).toBe(false);
  });
});
