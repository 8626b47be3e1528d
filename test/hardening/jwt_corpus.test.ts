import { generateKeyPairSync } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest, type CheckRequestInit } from '../../src/extauthz/client.js';
import { BARE_CHALLENGE, invalidTokenChallenge, moved, seen, seriesOf } from '../helpers/corpus.js';
import { b64, hmacSigned, nowSeconds, rEqualsSEqualsN, signRaw, toDer, unencodedPayload, unsigned, weakRsa, withSignature } from '../helpers/jwt_attacks.js';
import { makeKey, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * The JWT attack corpus: each row is an input and the exact answer it must get from the real
 * sidecar over gRPC — HTTP status, WWW-Authenticate, and which metric series move
 * (`auth_token_rejected_total{reason}`, `auth_authz_denied_total{reason}`). Issuer A requires
 * `typ: at+jwt`; issuer B is trusted too, with its own keys. A loopback recorder stands behind
 * every `jku` / `x5u` / redirect URL: no row may make the sidecar fetch anything from it.
 */

let idpA: JwksServer;
let idpB: JwksServer;
let recorder: Recorder;
let sidecar: Sidecar;
let kA: SigningKey; // ES256, kid k1
let kArsa: SigningKey; // RS256, kid rsa1
let kB: SigningKey; // issuer B, kid kb
let kBsameKid: SigningKey; // issuer B's key that reuses A's kid k1
let attacker: SigningKey; // nobody's key, kid k1
let weak: Awaited<ReturnType<typeof weakRsa>>;
let jwksRequestsAtStart = 0;

beforeAll(async () => {
  [idpA, idpB, recorder] = await Promise.all([startJwksServer(), startJwksServer(), startRecorder()]);
  [kA, kArsa, kB, kBsameKid, attacker] = await Promise.all([makeKey('k1'), makeKey('rsa1', 'RS256'), makeKey('kb'), makeKey('k1'), makeKey('k1')]);
  weak = await weakRsa('weak');
  idpA.keys = [kA.publicJwk, kArsa.publicJwk, weak.jwk];
  idpB.keys = [kB.publicJwk];
  sidecar = await startSidecar({
    issuers: [
      // A long cooldown: every unknown kid of the whole table together may cause one refetch.
      { issuer: idpA.issuer, jwks_uri: idpA.jwksUri, audiences: ['api'], required_typ: 'at+jwt', algorithms: ['ES256', 'RS256'], jwks: { cooldown_seconds: 3600, request_budget_ms: 1000 } },
      { issuer: idpB.issuer, jwks_uri: idpB.jwksUri, audiences: ['api'], algorithms: ['ES256'] },
    ],
  });
  jwksRequestsAtStart = idpA.jwksRequests;
});

afterAll(async () => {
  await sidecar?.close();
  await Promise.all([idpA?.close(), idpB?.close(), recorder?.close()]);
});

/** Claims of a valid access token of issuer A (alice is a viewer and owns d1: allowed). */
const claims = (over: Record<string, unknown> = {}) => ({ iss: idpA.issuer, aud: 'api', sub: 'alice', roles: ['viewer'], iat: nowSeconds(), exp: nowSeconds() + 600, ...over });
const header = (over: Record<string, unknown> = {}) => ({ alg: 'ES256', kid: 'k1', typ: 'at+jwt', ...over });
const valid = (over: Record<string, unknown> = {}, h: Record<string, unknown> = {}) => signRaw(kA, header(h), claims(over));

type Outcome =
  | { allow: true }
  | { status: 401; challenge: string; tokenReason?: string; denied: 'invalid_token' | 'unauthenticated' }
  | { status: 400; limit: string; denied: 'bad_request' };
const rejected = (description: string, tokenReason: string): Outcome => ({ status: 401, challenge: invalidTokenChallenge(description), tokenReason, denied: 'invalid_token' });
const MALFORMED = () => rejected('malformed token', 'ERR_TOKEN_MALFORMED');
const SIGNATURE = () => rejected('invalid signature', 'ERR_TOKEN_SIGNATURE');
const ALG = () => rejected('algorithm not allowed', 'ERR_TOKEN_ALG_NOT_ALLOWED');
const NO_KEY = () => rejected('signing key not found', 'ERR_TOKEN_KEY_NOT_FOUND');
const CLAIMS = () => rejected('invalid token claims', 'ERR_TOKEN_CLAIM');
const ISSUER = () => rejected('untrusted issuer', 'ERR_TOKEN_UNKNOWN_ISSUER');

interface Row {
  name: string;
  /** The bearer token, or a whole request for header-level rows. */
  token?: () => Promise<string> | string;
  request?: () => CheckRequestInit;
  expect: Outcome;
}

const none = (alg: string) => unsigned({ alg, typ: 'at+jwt', kid: 'k1' }, claims({ roles: ['admin'] }));
const ecPem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }) as string;

const rows: Row[] = [
  { name: 'a valid ES256 access token (baseline)', token: () => valid(), expect: { allow: true } },
  { name: 'a valid RS256 access token (baseline)', token: () => signRaw(kArsa, header({ alg: 'RS256', kid: 'rsa1' }), claims()), expect: { allow: true } },
  { name: 'typ application/at+jwt (RFC 8725 media type form)', token: () => valid({}, { typ: 'application/at+jwt' }), expect: { allow: true } },

  // alg none, every casing, empty and fake signatures
  ...['none', 'None', 'NONE', 'nOnE'].flatMap((alg): Row[] => [
    { name: `alg ${alg} with an empty signature`, token: () => `${none(alg)}`, expect: MALFORMED() },
    { name: `alg ${alg} with a fake signature`, token: () => `${none(alg)}${b64('sig')}`, expect: ALG() },
  ]),
  // algorithm confusion
  { name: 'HS256 signed with the issuer public JWK as the secret', token: () => hmacSigned(header({ alg: 'HS256' }), claims({ roles: ['admin'] }), JSON.stringify(kA.publicJwk)), expect: ALG() },
  { name: 'HS256 signed with a PEM public key as the secret', token: () => hmacSigned(header({ alg: 'HS256' }), claims({ roles: ['admin'] }), ecPem()), expect: ALG() },
  { name: 'an algorithm outside the issuer allow-list (PS256)', token: () => withSignature(unsigned(header({ alg: 'PS256' }), claims()), b64('x'.repeat(256))), expect: ALG() },
  { name: 'alg ES256 naming an RSA key', token: () => withSignature(unsigned(header({ kid: 'rsa1' }), claims()), Buffer.alloc(64, 1)), expect: NO_KEY() },
  // keys the token brings itself
  { name: 'an embedded jwk header with the attacker key (no kid)', token: async () => signRaw(attacker, { alg: 'ES256', typ: 'at+jwt', jwk: attacker.publicJwk }, claims({ roles: ['admin'] })), expect: SIGNATURE() },
  { name: 'an embedded jwk header with the attacker key and kid k1', token: async () => signRaw(attacker, header({ jwk: attacker.publicJwk }), claims({ roles: ['admin'] })), expect: SIGNATURE() },
  { name: 'a jku header pointing at the recorder', token: async () => signRaw(attacker, header({ kid: 'attacker-jku', jku: `${recorder.url}/jwks.json` }), claims({ roles: ['admin'] })), expect: NO_KEY() },
  { name: 'an x5u header pointing at the recorder', token: async () => signRaw(attacker, header({ kid: 'attacker-x5u', x5u: `${recorder.url}/cert.pem` }), claims({ roles: ['admin'] })), expect: NO_KEY() },
  { name: 'jku and x5u with the known kid k1', token: async () => signRaw(attacker, header({ jku: `${recorder.url}/jwks.json`, x5u: `${recorder.url}/c.pem` }), claims({ roles: ['admin'] })), expect: SIGNATURE() },
  // hostile kid values (each an unknown kid: one refetch for the whole table, then cooldown)
  ...[
    ['path traversal', '../../../../etc/passwd'],
    ['SQL', "' OR '1'='1' --; DROP TABLE keys;"],
    ['shell metacharacters', '$(touch /tmp/pwned); `id` | nc 127.0.0.1 1 && echo'],
    ['NUL and control characters', 'k1\u0000\r\n\t'],
    ['10 KB', 'k'.repeat(10 * 1024)],
  ].map(([what, kid]): Row => ({ name: `a hostile kid (${what})`, token: () => signRaw(attacker, header({ kid }), claims()), expect: NO_KEY() })),
  { name: 'an unknown kid', token: () => signRaw(attacker, header({ kid: 'rotated-away' }), claims()), expect: NO_KEY() },
  { name: 'a kid that is a number', token: () => signRaw(attacker, header({ kid: 42 }), claims()), expect: MALFORMED() },
  { name: 'a kid that is an object', token: () => signRaw(attacker, header({ kid: { $ne: null } }), claims()), expect: MALFORMED() },
  // critical header extensions
  { name: 'crit with an unknown extension', token: () => signRaw(kA, header({ crit: ['x-unknown'], 'x-unknown': true }), claims(), { 'x-unknown': true }), expect: MALFORMED() },
  { name: 'crit b64:false (an unencoded payload)', token: () => unencodedPayload(kA, header(), 'eyJzdWIiOiJhZG1pbiJ9'), expect: MALFORMED() },
  // forged ECDSA signatures
  { name: 'an all-zero ES256 signature (r = s = 0)', token: async () => withSignature(await valid({ roles: ['admin'] }), Buffer.alloc(64)), expect: SIGNATURE() },
  { name: 'an ES256 signature with r = s = n', token: async () => withSignature(await valid({ roles: ['admin'] }), rEqualsSEqualsN()), expect: SIGNATURE() },
  { name: 'a DER-encoded ES256 signature', token: async () => { const t = await valid(); return withSignature(t, toDer(Buffer.from(t.split('.')[2]!, 'base64url'))); }, expect: SIGNATURE() },
  { name: 'a truncated ES256 signature', token: async () => { const t = await valid(); return withSignature(t, Buffer.from(t.split('.')[2]!, 'base64url').subarray(0, 63)); }, expect: SIGNATURE() },
  { name: 'another key with the same kid', token: () => signRaw(attacker, header(), claims({ roles: ['admin'] })), expect: SIGNATURE() },
  { name: 'an RSA key under 2048 bits published in the JWKS', token: () => weak.sign({ typ: 'at+jwt' }, claims({ roles: ['admin'] })), expect: NO_KEY() },
  // time
  { name: 'an expired token', token: () => valid({ iat: nowSeconds() - 3600, exp: nowSeconds() - 600 }), expect: rejected('token expired', 'ERR_TOKEN_EXPIRED') },
  { name: 'a token not yet valid (nbf)', token: () => valid({ nbf: nowSeconds() + 600 }), expect: rejected('token not yet valid', 'ERR_TOKEN_NOT_YET_VALID') },
  { name: 'a far-future iat', token: () => valid({ iat: nowSeconds() + 3600, exp: nowSeconds() + 7200 }), expect: CLAIMS() },
  { name: 'exp as a string', token: () => valid({ exp: String(nowSeconds() + 600) }), expect: CLAIMS() },
  { name: 'no exp', token: () => valid({ exp: undefined }), expect: CLAIMS() },
  { name: 'an expired token with a bad signature reports the signature', token: async () => withSignature(await valid({ iat: nowSeconds() - 3600, exp: nowSeconds() - 600 }), Buffer.alloc(64, 7)), expect: SIGNATURE() },
  // issuer, audience, subject
  { name: 'a wrong aud', token: () => valid({ aud: 'other-api' }), expect: CLAIMS() },
  { name: 'no aud', token: () => valid({ aud: undefined }), expect: CLAIMS() },
  { name: 'an untrusted iss', token: () => valid({ iss: 'https://evil.example' }), expect: ISSUER() },
  { name: 'no iss', token: () => valid({ iss: undefined }), expect: ISSUER() },
  { name: 'iss as an array', token: () => valid({ iss: [idpA.issuer] }), expect: ISSUER() },
  { name: "issuer A's iss signed with issuer B's key", token: () => signRaw(kB, header({ kid: 'kb' }), claims({ roles: ['admin'] })), expect: NO_KEY() },
  { name: "issuer A's iss signed with issuer B's key that reuses A's kid", token: () => signRaw(kBsameKid, header(), claims({ roles: ['admin'] })), expect: SIGNATURE() },
  { name: 'no sub', token: () => valid({ sub: undefined }), expect: CLAIMS() },
  { name: 'sub as a number', token: () => valid({ sub: 7 }), expect: CLAIMS() },
  // the wrong kind of token (required_typ: at+jwt)
  { name: 'an ID token (typ JWT)', token: () => valid({ nonce: 'n', auth_time: nowSeconds() }, { typ: 'JWT' }), expect: CLAIMS() },
  { name: 'a token without typ', token: () => signRaw(kA, { alg: 'ES256', kid: 'k1' }, claims()), expect: CLAIMS() },
  {
    name: 'a DPoP proof presented as an access token',
    token: () => signRaw(kA, { alg: 'ES256', typ: 'dpop+jwt', jwk: kA.publicJwk }, { ...claims(), htm: 'GET', htu: 'http://api.example.com/documents/d1', jti: 'p1' }),
    expect: CLAIMS(),
  },
  // serialisation
  { name: 'bad base64url', token: () => '!!!.@@@.###', expect: MALFORMED() },
  { name: 'base64 padding', token: async () => { const [h, p, s] = (await valid()).split('.'); return `${h}==.${p}.${s}`; }, expect: MALFORMED() },
  { name: 'a header that is not JSON', token: () => `${b64('nope')}.${b64(claims())}.${b64('s')}`, expect: MALFORMED() },
  { name: 'a header that is a JSON array', token: () => `${b64([1])}.${b64(claims())}.${b64('s')}`, expect: MALFORMED() },
  { name: 'a payload that is not JSON', token: () => `${b64(header())}.${b64('not json')}.${b64('s')}`, expect: MALFORMED() },
  { name: 'invalid UTF-8 in the header', token: () => `${Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url')}.${b64(claims())}.${b64('s')}`, expect: MALFORMED() },
  { name: 'the JWS JSON serialisation', token: async () => { const [h, p, s] = (await valid()).split('.'); return JSON.stringify({ protected: h, payload: p, signature: s }); }, expect: MALFORMED() },
  { name: 'a 5-part JWE', token: () => `${b64({ alg: 'dir', enc: 'A256GCM' })}..${b64('iv')}.${b64('ct')}.${b64('tag')}`, expect: MALFORMED() },
  { name: 'two dots only', token: () => '..', expect: MALFORMED() },
  // A 1 MB Authorization header is refused by the header size limit before the token is looked at.
  { name: 'a 1 MB token', token: () => `${b64(header())}.${'a'.repeat(1024 * 1024)}.sig`, expect: { status: 400, limit: 'limits.max_header_bytes', denied: 'bad_request' } },
  { name: 'a token 1 byte over limits.max_token_bytes', token: () => 'a'.repeat(16 * 1024 + 1), expect: rejected('token too large', 'ERR_TOKEN_TOO_LARGE') },
  // the Authorization header itself
  { name: 'no Authorization header', request: () => httpCheckRequest('GET', '/documents/d1'), expect: { status: 401, challenge: BARE_CHALLENGE, denied: 'unauthenticated' } },
  { name: 'a Basic credential', request: () => httpCheckRequest('GET', '/documents/d1', { authorization: 'Basic YWxpY2U6cHc=' }), expect: { status: 401, challenge: BARE_CHALLENGE, denied: 'unauthenticated' } },
  { name: 'an empty Bearer', request: () => httpCheckRequest('GET', '/documents/d1', { authorization: 'Bearer   ' }), expect: { status: 401, challenge: invalidTokenChallenge('invalid authorization header'), denied: 'invalid_token' } },
  {
    name: 'two Authorization headers (a valid token and another)',
    request: () => {
      const r = httpCheckRequest('GET', '/documents/d1');
      r.attributes!.request!.http!.headerMap = { headers: [{ key: 'authorization', rawValue: Buffer.from('Bearer a.b.c') }, { key: 'authorization', rawValue: Buffer.from('Bearer d.e.f') }] };
      return r;
    },
    expect: { status: 401, challenge: invalidTokenChallenge('invalid authorization header'), denied: 'invalid_token' },
  },
];

describe('JWT attack corpus over the real gRPC server', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const rejectedBefore = await seriesOf(sidecar.metrics, 'auth_token_rejected_total');
    const deniedBefore = await seriesOf(sidecar.metrics, 'auth_authz_denied_total');
    const request = row.request ? row.request() : httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${await row.token!()}` });
    const res = seen(await sidecar.client.check(request));
    const rejectedMoved = moved(rejectedBefore, await seriesOf(sidecar.metrics, 'auth_token_rejected_total'));
    const deniedMoved = moved(deniedBefore, await seriesOf(sidecar.metrics, 'auth_authz_denied_total'));
    if ('allow' in row.expect) {
      expect(res.status).toBe(200);
      expect(rejectedMoved).toEqual({});
      expect(deniedMoved).toEqual({});
    } else if (row.expect.status === 400) {
      expect({ status: res.status, grpc: res.grpcCode, wwwAuthenticate: res.wwwAuthenticate, error: res.body?.error, limit: res.body?.limit }).toEqual({
        status: 400,
        grpc: status.INVALID_ARGUMENT,
        wwwAuthenticate: undefined,
        error: 'bad_request',
        limit: row.expect.limit,
      });
      expect(rejectedMoved).toEqual({});
      expect(deniedMoved).toEqual({ 'reason=bad_request': 1 });
    } else {
      expect({ status: res.status, grpc: res.grpcCode, wwwAuthenticate: res.wwwAuthenticate, error: res.body?.error }).toEqual({
        status: 401,
        grpc: status.UNAUTHENTICATED,
        wwwAuthenticate: row.expect.challenge,
        error: row.expect.denied,
      });
      expect(rejectedMoved).toEqual(row.expect.tokenReason ? { [`reason=${row.expect.tokenReason}`]: 1 } : {});
      expect(deniedMoved).toEqual({ [`reason=${row.expect.denied}`]: 1 });
    }
    expect(recorder.hits).toEqual([]);
  });

  it('made at most one JWKS refetch for all the unknown kids of the table, and counted it', async () => {
    expect(idpA.jwksRequests - jwksRequestsAtStart).toBe(1);
    expect(await seriesOf(sidecar.metrics, 'auth_jwks_unknown_kid_refetch_total')).toEqual(new Map([[`issuer=${idpA.issuer}`, 1]]));
    expect(idpB.jwksRequests).toBe(1);
  });

  it('never fetched a jku, x5u or any other URL a token named', () => {
    expect(recorder.hits).toEqual([]);
  });
});

