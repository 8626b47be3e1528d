import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FetchFailure } from '../../../src/tokens/http_fetch.js';
import { filterJwks } from '../../../src/tokens/jwks_document.js';

const rsa = (modulusLength: number) => generateKeyPairSync('rsa', { modulusLength });
const rsa1024 = rsa(1024);
const rsa2048 = rsa(2048);
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');

const pub = (pair: { publicKey: { export(o: { format: 'jwk' }): JsonWebKey } }, extra: Record<string, unknown> = {}) => ({ ...pair.publicKey.export({ format: 'jwk' }), ...extra });
const priv = (pair: { privateKey: { export(o: { format: 'jwk' }): JsonWebKey } }, extra: Record<string, unknown> = {}) => ({ ...pair.privateKey.export({ format: 'jwk' }), ...extra });

const kids = (doc: unknown) => filterJwks(doc).jwks.keys.map((k) => k.kid);

function invalidDocument(doc: unknown): FetchFailure {
  try {
    filterJwks(doc);
  } catch (err) {
    if (err instanceof FetchFailure) return err;
    throw err;
  }
  throw new Error('expected a FetchFailure');
}

describe('filterJwks', () => {
  it('keeps public RSA (2048 bits), EC and OKP signing keys unchanged', () => {
    const keys = [pub(rsa2048, { kid: 'rsa', use: 'sig', alg: 'RS256' }), pub(ec, { kid: 'ec' }), pub(ed, { kid: 'ed' })];
    expect(filterJwks({ keys })).toEqual({ jwks: { keys }, skipped: [] });
  });

  it('drops RSA keys under 2048 bits', () => {
    const result = filterJwks({ keys: [pub(rsa1024, { kid: 'weak' }), pub(rsa2048, { kid: 'strong' })] });
    expect(result.jwks.keys.map((k) => k.kid)).toEqual(['strong']);
    expect(result.skipped).toEqual(['weak: RSA modulus of 1024 bits is under 2048']);
  });

  it('counts modulus bits exactly: 2047 bits is dropped, a leading zero byte is not counted', () => {
    const e = 'AQAB';
    const n2047 = Buffer.concat([Buffer.from([0x7f]), Buffer.alloc(255, 0xff)]).toString('base64url');
    const n2048zero = Buffer.concat([Buffer.from([0x00, 0x80]), Buffer.alloc(255, 0x01)]).toString('base64url');
    const n2040zero = Buffer.concat([Buffer.from([0x00, 0x00, 0xff]), Buffer.alloc(254, 0x01)]).toString('base64url');
    const result = filterJwks({ keys: [{ kty: 'RSA', kid: 'a', n: n2047, e }, { kty: 'RSA', kid: 'b', n: n2048zero, e }, { kty: 'RSA', kid: 'c', n: n2040zero, e }] });
    expect(result.jwks.keys.map((k) => k.kid)).toEqual(['b']);
    expect(result.skipped).toEqual(['a: RSA modulus of 2047 bits is under 2048', 'c: RSA modulus of 2040 bits is under 2048']);
  });

  it('drops keys holding private members', () => {
    const result = filterJwks({ keys: [priv(rsa2048, { kid: 'rsa-private' }), priv(ec, { kid: 'ec-private' }), priv(ed, { kid: 'ed-private' }), pub(ec, { kid: 'ok' })] });
    expect(result.jwks.keys.map((k) => k.kid)).toEqual(['ok']);
    expect(result.skipped).toEqual(['rsa-private: holds private or symmetric material', 'ec-private: holds private or symmetric material', 'ed-private: holds private or symmetric material']);
    // Any one private member is enough.
    expect(kids({ keys: [pub(rsa2048, { kid: 'p', p: 'AQAB' })] })).toEqual([]);
  });

  it('drops symmetric (oct) keys', () => {
    const result = filterJwks({ keys: [{ kty: 'oct', kid: 'hmac', k: 'c2VjcmV0' }] });
    expect(result.jwks.keys).toEqual([]);
    expect(result.skipped).toEqual(['hmac: unsupported kty oct']);
  });

  it('drops encryption keys but keeps keys without a use', () => {
    const result = filterJwks({ keys: [pub(ec, { kid: 'enc', use: 'enc' }), pub(ec, { kid: 'sig', use: 'sig' }), pub(ec, { kid: 'none' })] });
    expect(result.jwks.keys.map((k) => k.kid)).toEqual(['sig', 'none']);
    expect(result.skipped).toEqual(['enc: not a signing key']);
  });

  it('drops malformed entries with a reason, naming keys without a kid', () => {
    const result = filterJwks({ keys: [null, 'x', { kid: 'nokty' }, { kty: 'RSA', kid: 'no-n', e: 'AQAB' }, pub(ec, { kid: 7 })] });
    expect(result.jwks.keys).toEqual([]);
    expect(result.skipped).toEqual(['(no kid): not an object', '(no kid): not an object', 'nokty: no kty', 'no-n: RSA key without n/e', '(no kid): kid is not a string']);
  });

  it('looks at no more than the first 100 keys', () => {
    const key = pub(ec);
    const keys = Array.from({ length: 150 }, (_, i) => ({ ...key, kid: `k${i}` }));
    const result = filterJwks({ keys });
    expect(result.jwks.keys).toHaveLength(100);
    expect(result.jwks.keys.at(-1)?.kid).toBe('k99');
  });

  it('keeps an empty key list as an empty set', () => {
    expect(filterJwks({ keys: [] })).toEqual({ jwks: { keys: [] }, skipped: [] });
  });

  it.each([[null], ['keys'], [[]], [{}], [{ keys: {} }], [{ keys: 'a b' }]])('refuses %j as an invalid document', (doc) => {
    const err = invalidDocument(doc);
    expect(err.reason).toBe('invalid_document');
    expect(err.code).toBe('ERR_JWKS_INVALID');
    expect(err.message).toContain('"keys" array');
  });
});
