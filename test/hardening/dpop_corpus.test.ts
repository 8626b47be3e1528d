import { KeyObject, generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { status } from '@grpc/grpc-js';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest, type CheckRequestInit } from '../../src/extauthz/client.js';
import { addClient } from '../../src/issuer/clients.js';
import type { Clock } from '../../src/lib/clock.js';
import { invalidTokenChallenge, moved, seen, seriesOf } from '../helpers/corpus.js';
import { ath, makeDpopKey, type DpopKey, type ProofOptions } from '../helpers/dpop.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { b64, hmacSigned } from '../helpers/jwt_attacks.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * The DPoP (RFC 9449) attack corpus: each row is a proof (or its absence) and the exact answer
 * the real sidecar gives over gRPC — HTTP status, WWW-Authenticate, and which
 * `auth_dpop_proofs_rejected_total{reason}` series moves — then the same at the token endpoint
 * over HTTP. Access tokens come from an external issuer so each row binds its token (`cnf.jkt`)
 * to exactly the key under test: every row breaks one thing. A loopback recorder stands behind
 * every `jku` / `x5u` a proof names; nothing may fetch from it.
 */

const ALGS = 'ES256 ES384 EdDSA Ed25519 PS256 RS256';
const PROOF = `DPoP algs="${ALGS}", error="invalid_dpop_proof", error_description="invalid DPoP proof"`;
const NOT_BOUND = `DPoP algs="${ALGS}", error="invalid_token", error_description="token is not DPoP-bound"`;
const AS_BEARER = invalidTokenChallenge('DPoP-bound token presented as a bearer token');
const MAX_PROOF = 4096;
const NONCE_LIFETIME = 10;
const HOST = 'api.example.com';
const DOC = `http://${HOST}/documents/d1`;

let idp: JwksServer;
let idpKey: SigningKey;
let recorder: Recorder;
let sidecar: Sidecar;
let issuer = '';
let svcSecret = '';
/** The sidecar's clock runs this far ahead of the wall clock (stale-nonce rows move it). */
let skewMs = 0;
const clock: Clock = { now: () => Date.now() + skewMs };
const nowS = () => Math.floor(clock.now() / 1000);

/** The standard key and an access token bound to it. */
let K: DpopKey;
let T = '';
let unboundToken = '';

/** An access token of the external issuer for alice (a viewer who may read d1), bound to `jkt` when given. */
const tokenFor = (jkt?: string) => signToken({ sub: 'alice', roles: ['viewer'], ...(jkt === undefined ? {} : { cnf: { jkt } }) }, { key: idpKey, issuer: idp.issuer, audience: 'api' });

/** A proof by K for GET /documents/d1 with T. */
const std = (o: ProofOptions & { htm?: string; htu?: string } = {}) => K.proof(o.htm ?? 'GET', o.htu ?? DOC, { accessToken: T, ...o });

/** The claims of a good proof for `token`, with overrides (`undefined` drops a claim). */
const claims = (token: string, over: Record<string, unknown> = {}) => ({ htm: 'GET', htu: DOC, iat: nowS(), jti: randomUUID(), ath: ath(token), ...over });

/** Signs any protected header and payload bytes (nothing normalises the attack). */
const signRaw = (key: Parameters<CompactSign['sign']>[0], header: Record<string, unknown>, payload: Record<string, unknown> | string) =>
  new CompactSign(new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload))).setProtectedHeader(header as { alg: string }).sign(key);

/** An RSA key under 2048 bits (jose refuses to sign with one, so node:crypto does). */
async function weakRsaProof(): Promise<{ token: string; proof: string }> {
  const pair = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const jwk = await exportJWK(pair.publicKey);
  const token = await tokenFor(await calculateJwkThumbprint(jwk));
  const data = `${b64({ alg: 'RS256', typ: 'dpop+jwt', jwk })}.${b64(claims(token))}`;
  return { token, proof: `${data}.${cryptoSign('sha256', Buffer.from(data), pair.privateKey).toString('base64url')}` };
}

/** A proof by a fresh key of `alg` with `jwk` in its header (its public key unless given), and a token bound to the key. */
async function keyedProof(alg: 'ES256' | 'ES512' | 'RS256', jwkOf: (pub: JWK, priv: JWK) => JWK = (pub) => pub, header: Record<string, unknown> = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const pub = await exportJWK(publicKey);
  const token = await tokenFor(await calculateJwkThumbprint(pub));
  return { token, proof: await signRaw(privateKey, { alg, typ: 'dpop+jwt', jwk: jwkOf(pub, await exportJWK(privateKey)), ...header }, claims(token)) };
}

/** A proof by K of `padding` bytes more, and its length. */
const padded = (padding: number) => std({ extra: { pad: 'p'.repeat(padding) } });
async function proofNear(limit: number, side: 'within' | 'over'): Promise<string> {
  let pad = 0;
  let proof = await padded(pad);
  // Base64url grows 4 characters per 3 bytes: close in on the limit from below, then step over it.
  for (let i = 0; i < 6 && proof.length < limit - 3; i++) proof = await padded((pad += Math.floor(((limit - proof.length) * 3) / 4)));
  while (side === 'over' && proof.length <= limit) proof = await padded(++pad);
  while (side === 'within' && proof.length > limit) proof = await padded(--pad);
  const [low, high] = side === 'within' ? [limit - 3, limit] : [limit + 1, limit + 4];
  if (proof.length < low || proof.length > high) throw new Error(`could not make a proof of ${low}..${high} characters (got ${proof.length})`);
  return proof;
}

type Outcome = { allow: true } | { status: 401; challenge: string; reason: string | undefined };
const refused = (reason: string): Outcome => ({ status: 401, challenge: PROOF, reason });
const MALFORMED = refused('malformed');
const HTU = refused('htu_mismatch');
const ALLOW: Outcome = { allow: true };

interface Attempt {
  /** `Authorization` value; `DPoP <token>` by default. */
  authorization?: string;
  token?: string;
  /** `DPoP` header values, in order; none: no header. */
  proofs?: string[];
  /** As Envoy's `headers` map does with repeated headers: values joined with a comma. */
  joined?: boolean;
  path?: string;
}

interface Row {
  name: string;
  make: () => Promise<Attempt>;
  /** The same request is sent first and must be allowed. */
  replayed?: boolean;
  expect: Outcome;
}

function request(a: Attempt): CheckRequestInit {
  const headers: Record<string, string> = { authorization: a.authorization ?? `DPoP ${a.token ?? T}` };
  const proofs = a.proofs ?? [];
  if (proofs.length === 1 || (a.joined && proofs.length > 1)) headers.dpop = proofs.join(',');
  const r = httpCheckRequest('GET', a.path ?? '/documents/d1', headers, { host: HOST });
  if (proofs.length > 1 && !a.joined) {
    // Envoy's raw header_map keeps repeated headers apart.
    r.attributes!.request!.http!.headerMap = { headers: [...Object.entries(headers).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })), ...proofs.map((p) => ({ key: 'dpop', rawValue: Buffer.from(p) }))] };
  }
  return r;
}

const one = async (proof: Promise<string>, over: Attempt = {}): Promise<Attempt> => ({ proofs: [await proof], ...over });
const keyed = async (p: Promise<{ token: string; proof: string }>): Promise<Attempt> => {
  const { token, proof } = await p;
  return { token, proofs: [proof] };
};

const rows: Row[] = [
  { name: 'a fresh proof of the bound key (baseline)', make: () => one(std()), expect: ALLOW },
  { name: 'replay: the same proof a second time', make: () => one(std()), replayed: true, expect: refused('replay') },
  // the request the proof names
  { name: 'htm POST for a GET', make: () => one(std({ htm: 'POST' })), expect: refused('htm_mismatch') },
  { name: 'htm in lower case ("get": methods are case-sensitive, RFC 9110 §9.1)', make: () => one(std({ htm: 'get' })), expect: refused('htm_mismatch') },
  { name: 'htu naming another resource', make: () => one(std({ htu: `http://${HOST}/documents/d2` })), expect: HTU },
  { name: 'htu with another scheme (https)', make: () => one(std({ htu: `https://${HOST}/documents/d1` })), expect: HTU },
  { name: 'htu with another port', make: () => one(std({ htu: `http://${HOST}:8080/documents/d1` })), expect: HTU },
  { name: 'htu with the default port spelled out (:80): accepted (RFC 3986 §6.2.3)', make: () => one(std({ htu: `http://${HOST}:80/documents/d1` })), expect: ALLOW },
  { name: 'htu with scheme and host in upper case: accepted (RFC 3986 §6.2.2.1)', make: () => one(std({ htu: `HTTP://API.EXAMPLE.COM/documents/d1` })), expect: ALLOW },
  { name: 'htu with the path in another case (/Documents/d1: paths are case-sensitive)', make: () => one(std({ htu: `http://${HOST}/Documents/d1` })), expect: HTU },
  { name: 'htu with a trailing slash (/documents/d1/)', make: () => one(std({ htu: `http://${HOST}/documents/d1/` })), expect: HTU },
  { name: 'htu with unreserved characters percent-encoded (/%64ocuments/%641): accepted (RFC 3986 §6.2.2.2)', make: () => one(std({ htu: `http://${HOST}/%64ocuments/%641` })), expect: ALLOW },
  { name: 'htu with a dot segment (/documents/x/../d1): accepted (RFC 3986 §6.2.2.3)', make: () => one(std({ htu: `http://${HOST}/documents/x/../d1` })), expect: ALLOW },
  { name: 'htu with userinfo (http://alice:pw@host/…: no request target has one)', make: () => one(std({ htu: `http://alice:pw@${HOST}/documents/d1` })), expect: HTU },
  { name: 'htu with a query: accepted (query and fragment are ignored, RFC 9449 §4.3)', make: () => one(std({ htu: `${DOC}?page=2#top` })), expect: ALLOW },
  { name: 'a request with a query, htu without it: accepted (query ignored)', make: () => one(std(), { path: '/documents/d1?page=2' }), expect: ALLOW },
  { name: 'htu that is not a URL', make: () => one(std({ htu: 'documents/d1' })), expect: HTU },
  // time
  { name: 'iat 30 s old: accepted (dpop.iat_window_seconds 60)', make: () => one(std({ iat: nowS() - 30 })), expect: ALLOW },
  { name: 'iat 2 minutes old', make: () => one(std({ iat: nowS() - 120 })), expect: refused('iat_window') },
  { name: 'iat 2 minutes in the future', make: () => one(std({ iat: nowS() + 120 })), expect: refused('iat_window') },
  { name: 'iat as a string', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: K.publicJwk }, claims(T, { iat: String(nowS()) }))), expect: MALFORMED },
  // the token the proof is for, and the key it is bound to
  { name: 'ath of another token', make: () => one(std({ ath: ath(`${T}x`) })), expect: refused('ath_mismatch') },
  { name: 'no ath', make: () => one(K.proof('GET', DOC)), expect: refused('ath_mismatch') },
  { name: 'a proof by another key (its jwk thumbprint differs from cnf.jkt)', make: async () => one((await makeDpopKey()).proof('GET', DOC, { accessToken: T })), expect: refused('jkt_mismatch') },
  { name: 'the bound jwk with extra members (kid, use, alg): same RFC 7638 thumbprint, accepted', make: () => one(std({ jwk: { ...K.publicJwk, kid: 'k', use: 'sig', alg: 'ES256' } })), expect: ALLOW },
  { name: 'the bound jwk in the header, signed by another key', make: async () => one(std({ signWith: (await makeDpopKey()).privateKey })), expect: refused('bad_signature') },
  {
    name: 'a token bound to a cnf.jkt that is not a string (no proof can match)',
    make: async () => {
      const token = await signToken({ sub: 'alice', roles: ['viewer'], cnf: { jkt: 42 } }, { key: idpKey, issuer: idp.issuer, audience: 'api' });
      return one(K.proof('GET', DOC, { accessToken: token }), { token });
    },
    expect: refused('jkt_mismatch'),
  },
  // typ and alg
  { name: 'no typ', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', jwk: K.publicJwk }, claims(T))), expect: MALFORMED },
  { name: 'typ JWT', make: () => one(std({ typ: 'JWT' })), expect: MALFORMED },
  { name: 'typ application/dpop+jwt (RFC 9449 §4.3 names the exact value dpop+jwt)', make: () => one(std({ typ: 'application/dpop+jwt' })), expect: MALFORMED },
  { name: 'alg none with an empty signature', make: async () => one(Promise.resolve(`${b64({ alg: 'none', typ: 'dpop+jwt', jwk: K.publicJwk })}.${b64(claims(T))}.`)), expect: MALFORMED },
  { name: 'alg none with a fake signature', make: async () => one(Promise.resolve(`${b64({ alg: 'none', typ: 'dpop+jwt', jwk: K.publicJwk })}.${b64(claims(T))}.${b64('sig')}`)), expect: MALFORMED },
  { name: 'HS256 with the public jwk as the HMAC secret', make: async () => one(Promise.resolve(hmacSigned({ alg: 'HS256', typ: 'dpop+jwt', jwk: K.publicJwk }, claims(T), JSON.stringify(K.publicJwk)))), expect: MALFORMED },
  { name: 'ES512, an algorithm outside dpop.algorithms', make: () => keyed(keyedProof('ES512')), expect: MALFORMED },
  {
    name: 'crit naming an extension (none is understood, RFC 7515 §4.1.11)',
    make: async () => {
      // jose will not sign an unknown critical extension: node:crypto signs it.
      const data = `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: K.publicJwk, crit: ['x-ext'], 'x-ext': 1 })}.${b64(claims(T))}`;
      return one(Promise.resolve(`${data}.${cryptoSign('sha256', Buffer.from(data), { key: KeyObject.from(K.privateKey), dsaEncoding: 'ieee-p1363' }).toString('base64url')}`));
    },
    expect: MALFORMED,
  },
  { name: 'a b64 header marked critical (RFC 7797)', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: K.publicJwk, b64: true, crit: ['b64'] }, claims(T))), expect: MALFORMED },
  { name: 'alg RS256 over an EC jwk', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: K.publicJwk }, claims(T)).then((p) => `${b64({ alg: 'RS256', typ: 'dpop+jwt', jwk: K.publicJwk })}.${p.split('.').slice(1).join('.')}`)), expect: refused('malformed') },
  // the jwk itself
  { name: 'an EC private key in jwk (d)', make: () => keyed(keyedProof('ES256', (pub, priv) => ({ ...pub, d: priv.d! }))), expect: MALFORMED },
  { name: 'an RSA private key in jwk (d, p, q, dp, dq, qi)', make: () => keyed(keyedProof('RS256', (_pub, priv) => priv)), expect: MALFORMED },
  { name: 'a symmetric (oct) jwk with HS256', make: async () => one(Promise.resolve(hmacSigned({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: b64('secret') } }, claims(T), 'secret'))), expect: MALFORMED },
  { name: 'a symmetric (oct) jwk with ES256', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: b64('secret') } }, claims(T))), expect: MALFORMED },
  // jose refuses RSA keys under 2048 bits when verifying: counted as a signature that does not verify.
  { name: 'an RSA key under 2048 bits (1024) in jwk, the token bound to it', make: () => keyed(weakRsaProof()), expect: refused('malformed') },
  { name: 'no jwk', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt' }, claims(T))), expect: MALFORMED },
  { name: 'a jwk that is a string', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: JSON.stringify(K.publicJwk) }, claims(T))), expect: MALFORMED },
  { name: 'jku instead of jwk (pointing at the recorder)', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jku: `${recorder.url}/jwks.json`, kid: 'k' }, claims(T))), expect: MALFORMED },
  { name: 'x5u instead of jwk (pointing at the recorder)', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', x5u: `${recorder.url}/cert.pem` }, claims(T))), expect: MALFORMED },
  { name: 'x5c instead of jwk', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', x5c: [b64('not a certificate')] }, claims(T))), expect: MALFORMED },
  // shape and size
  { name: 'two DPoP headers (kept apart in header_map)', make: async () => ({ proofs: [await std(), await std()] }), expect: MALFORMED },
  { name: 'two DPoP headers joined by Envoy into one value', make: async () => ({ proofs: [await std(), await std()], joined: true }), expect: MALFORMED },
  { name: `a proof just within dpop.max_proof_bytes (${MAX_PROOF}): accepted`, make: () => one(proofNear(MAX_PROOF, 'within')), expect: ALLOW },
  { name: `a proof just over dpop.max_proof_bytes (${MAX_PROOF})`, make: () => one(proofNear(MAX_PROOF, 'over')), expect: MALFORMED },
  { name: 'an empty DPoP header', make: async () => ({ proofs: [''] }), expect: MALFORMED },
  { name: 'a JWE (five parts)', make: async () => one(Promise.resolve(`${b64({ alg: 'dir', enc: 'A256GCM', typ: 'dpop+jwt' })}..${b64('iv')}.${b64('ct')}.${b64('tag')}`)), expect: MALFORMED },
  { name: 'a payload that is not JSON (validly signed)', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: K.publicJwk }, 'GET /documents/d1')), expect: MALFORMED },
  { name: 'a payload that is a JSON array', make: async () => one(signRaw(K.privateKey, { alg: 'ES256', typ: 'dpop+jwt', jwk: K.publicJwk }, JSON.stringify([claims(T)]))), expect: MALFORMED },
  { name: 'no jti', make: () => one(std({ extra: { jti: undefined } })), expect: MALFORMED },
  { name: 'an empty jti', make: () => one(std({ jti: '' })), expect: MALFORMED },
  { name: 'a 300-character jti (over 256)', make: () => one(std({ jti: 'j'.repeat(300) })), expect: MALFORMED },
  { name: 'a 10 KB jti (refused by the size limit before parsing)', make: () => one(std({ jti: 'j'.repeat(10 * 1024) })), expect: MALFORMED },
  // schemes
  { name: 'Authorization: DPoP with no DPoP header', make: async () => ({}), expect: refused('missing') },
  { name: 'Authorization: DPoP with no token', make: async () => one(std(), { authorization: 'DPoP' }), expect: { status: 401, challenge: invalidTokenChallenge('invalid authorization header'), reason: undefined } },
  { name: 'the bound token as a Bearer token (with a valid proof)', make: async () => one(std(), { authorization: `Bearer ${T}` }), expect: { status: 401, challenge: AS_BEARER, reason: 'bearer_scheme' } },
  { name: 'an unbound token with the DPoP scheme (and a valid proof for it)', make: async () => one(K.proof('GET', DOC, { accessToken: unboundToken }), { token: unboundToken }), expect: { status: 401, challenge: NOT_BOUND, reason: undefined } },
  { name: 'an unbound token as Bearer with a stray DPoP header: allowed (the header is not looked at)', make: async () => one(std(), { authorization: `Bearer ${unboundToken}` }), expect: ALLOW },
];

const dpopRejections = () => seriesOf(sidecar.metrics, 'auth_dpop_proofs_rejected_total');

beforeAll(async () => {
  [idp, recorder] = await Promise.all([startJwksServer(), startRecorder()]);
  idpKey = await makeKey('idp1');
  idp.keys = [idpKey.publicJwk];
  sidecar = await startSidecar(
    {
      issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'], algorithms: ['ES256'] }],
      dpop: { max_proof_bytes: MAX_PROOF, require_nonce: true, nonce_lifetime_seconds: NONCE_LIFETIME },
      token_module: { rate_limit: { login_per_minute: 0 } },
    },
    clock,
  );
  issuer = sidecar.server.issuer!;
  svcSecret = (await addClient(sidecar.server.tokens!.ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'], redirectUris: [], firstParty: false })).secret!;
  K = await makeDpopKey();
  T = await tokenFor(K.jkt);
  unboundToken = await tokenFor();
});

afterAll(async () => {
  await sidecar?.close();
  await Promise.all([idp?.close(), recorder?.close()]);
});

describe('DPoP proof corpus on the Envoy Check path (real gRPC)', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const attempt = await row.make();
    if (row.replayed) expect(seen(await sidecar.client.check(request(attempt))).status).toBe(200);
    const before = await dpopRejections();
    const res = seen(await sidecar.client.check(request(attempt)));
    const movedSeries = moved(before, await dpopRejections());
    if ('allow' in row.expect) {
      expect({ status: res.status, moved: movedSeries }).toEqual({ status: 200, moved: {} });
    } else {
      expect({ status: res.status, grpc: res.grpcCode, wwwAuthenticate: res.wwwAuthenticate, error: res.body?.error }).toEqual({ status: 401, grpc: status.UNAUTHENTICATED, wwwAuthenticate: row.expect.challenge, error: 'invalid_token' });
      expect(movedSeries).toEqual(row.expect.reason ? { [`reason=${row.expect.reason}`]: 1 } : {});
    }
    expect(recorder.hits).toEqual([]);
  });
});

describe('DPoP proof corpus at the token endpoint (dpop.require_nonce)', () => {
  const TOKEN_URL = () => `${issuer}/oauth2/token`;
  /** POST /oauth2/token with node:http, so two proofs travel as two DPoP header lines (fetch would join them). */
  const post = (proofs: string[]) =>
    new Promise<{ status: number; body: Record<string, unknown>; wwwAuthenticate: string | null; nonce: string | null; cacheControl: string | null }>((resolve, reject) => {
      const body = 'grant_type=client_credentials&scope=documents';
      const headers: Record<string, string | string[]> = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}` };
      if (proofs.length) headers.dpop = proofs;
      const req = httpRequest(`${issuer}/oauth2/token`, { method: 'POST', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const h = (name: string) => (res.headers[name] as string | undefined) ?? null;
          resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown>, wwwAuthenticate: h('www-authenticate'), nonce: h('dpop-nonce'), cacheControl: h('cache-control') });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  /** A current nonce, as a client learns it: from a refused first attempt. */
  const currentNonce = async () => (await post([await K.proof('POST', TOKEN_URL(), { iat: nowS() })])).nonce!;
  const proof = async (o: ProofOptions & { htm?: string; htu?: string; key?: DpopKey } = {}) => (o.key ?? K).proof(o.htm ?? 'POST', o.htu ?? TOKEN_URL(), { iat: nowS(), nonce: await currentNonce(), ...o });

  type Answer = { status: 200; tokenType: 'DPoP' | 'Bearer' } | { status: 400; error: 'invalid_dpop_proof' | 'use_dpop_nonce'; reason: string };
  const endpointRows: Array<{ name: string; proofs: () => Promise<string[]>; replayed?: boolean; skewMs?: number; expect: Answer }> = [
    { name: 'no DPoP header: a Bearer token (DPoP is optional)', proofs: async () => [], expect: { status: 200, tokenType: 'Bearer' } },
    { name: 'a proof with the current nonce: a DPoP-bound token', proofs: async () => [await proof()], expect: { status: 200, tokenType: 'DPoP' } },
    { name: 'a proof without a nonce: use_dpop_nonce with a fresh DPoP-Nonce', proofs: async () => [await K.proof('POST', TOKEN_URL(), { iat: nowS() })], expect: { status: 400, error: 'use_dpop_nonce', reason: 'nonce' } },
    { name: 'a forged nonce (the current window, a made-up MAC)', proofs: async () => [await proof({ nonce: `${Math.floor(clock.now() / (NONCE_LIFETIME * 1000)).toString(36)}.${b64('0123456789abcdef')}` })], expect: { status: 400, error: 'use_dpop_nonce', reason: 'nonce' } },
    { name: `a stale nonce (issued ${2 * NONCE_LIFETIME + 5} s earlier)`, proofs: async () => [await proof()], skewMs: (2 * NONCE_LIFETIME + 5) * 1000, expect: { status: 400, error: 'use_dpop_nonce', reason: 'nonce' } },
    { name: 'a proof for another htu (the introspection endpoint)', proofs: async () => [await proof({ htu: `${issuer}/oauth2/introspect` })], expect: { status: 400, error: 'invalid_dpop_proof', reason: 'htu_mismatch' } },
    { name: 'a proof for the token endpoint of another issuer', proofs: async () => [await proof({ htu: 'https://evil.example/oauth2/token' })], expect: { status: 400, error: 'invalid_dpop_proof', reason: 'htu_mismatch' } },
    { name: 'htm GET', proofs: async () => [await proof({ htm: 'GET' })], expect: { status: 400, error: 'invalid_dpop_proof', reason: 'htm_mismatch' } },
    { name: 'a replayed proof (with a valid nonce)', proofs: async () => [await proof()], replayed: true, expect: { status: 400, error: 'invalid_dpop_proof', reason: 'replay' } },
    { name: 'two DPoP headers', proofs: async () => [await proof(), await proof()], expect: { status: 400, error: 'invalid_dpop_proof', reason: 'malformed' } },
    { name: 'an EC private key in jwk', proofs: async () => [await proof({ jwk: { ...K.publicJwk, d: (await exportJWK(K.privateKey)).d! } })], expect: { status: 400, error: 'invalid_dpop_proof', reason: 'malformed' } },
  ];

  it.each(endpointRows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const proofs = await row.proofs();
    if (row.replayed) expect((await post(proofs)).status).toBe(200);
    const stale = row.skewMs !== undefined ? proofs : undefined;
    skewMs = row.skewMs ?? 0;
    try {
      // A stale row signs its proof again at the later time: only the nonce is old.
      const sent = stale ? [await K.proof('POST', TOKEN_URL(), { iat: nowS(), nonce: JSON.parse(Buffer.from(stale[0]!.split('.')[1]!, 'base64url').toString()).nonce as string })] : proofs;
      const before = await dpopRejections();
      const res = await post(sent);
      const movedSeries = moved(before, await dpopRejections());
      expect(res.wwwAuthenticate).toBeNull();
      expect(res.cacheControl).toBe('no-store');
      if (row.expect.status === 200) {
        expect({ status: res.status, tokenType: res.body.token_type, moved: movedSeries }).toEqual({ status: 200, tokenType: row.expect.tokenType, moved: {} });
        expect(res.nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
      } else {
        expect({ status: res.status, error: res.body.error }).toEqual({ status: 400, error: row.expect.error });
        expect(movedSeries).toEqual({ [`reason=${row.expect.reason}`]: 1 });
        if (row.expect.error === 'use_dpop_nonce') {
          expect(res.nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
          // The fresh nonce works at once.
          const retried = await post([await K.proof('POST', TOKEN_URL(), { iat: nowS(), nonce: res.nonce! })]);
          expect({ status: retried.status, tokenType: retried.body.token_type }).toEqual({ status: 200, tokenType: 'DPoP' });
        }
      }
    } finally {
      skewMs = 0;
    }
    expect(recorder.hits).toEqual([]);
  });
});
