import { status, type ServiceError } from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppClient } from '../../src/appapi/client.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { Decision } from '../../src/gen/portcullis/authz/v1/authorizer_pb.js';
import { addClient, type NewClientInput } from '../../src/issuer/clients.js';
import type { IssuerContext } from '../../src/issuer/context.js';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDpopKey, type DpopKey } from '../helpers/dpop.js';
import { tempDir } from '../helpers/temp_dir.js';
import { completeAuthorization, createTestUser } from '../helpers/login_flow.js';
import { EXAMPLE_POLICIES, metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * DPoP (RFC 9449) end to end: the token endpoint binds tokens to a proof key, and every place a
 * token is used (Envoy Check over gRPC, the HTTP ext_authz listener, the app API, /userinfo)
 * demands a fresh proof of that key. Tokens are obtained with openid-client, a certified RP.
 */

const ALGS = 'ES256 ES384 EdDSA Ed25519 PS256 RS256';
const PROOF_CHALLENGE = `DPoP algs="${ALGS}", error="invalid_dpop_proof", error_description="invalid DPoP proof"`;
const HOST = 'api.example.com';
const DOC_URL = `http://${HOST}/documents/d1`;
const SPA_REDIRECT = 'http://127.0.0.1:9/spa/callback';

let sidecar: Sidecar;
let ctx: IssuerContext;
let issuer: string;
let key: DpopKey;
let boundToken: string;
const secrets: Record<string, string> = {};

async function registerClient(c: Partial<NewClientInput> & Pick<NewClientInput, 'clientId' | 'type' | 'grantTypes'>): Promise<void> {
  const { secret } = await addClient(ctx, { redirectUris: [], scopes: [], roles: [], firstParty: false, ...c });
  if (secret) secrets[c.clientId] = secret;
}

const config = (clientId: string, at = issuer) =>
  oidc.discovery(new URL(at), clientId, secrets[clientId] === undefined ? undefined : { client_secret: secrets[clientId] }, secrets[clientId] === undefined ? oidc.None() : oidc.ClientSecretBasic(secrets[clientId]), { execute: [oidc.allowInsecureRequests] });
const handle = async (clientId: string, k: DpopKey, at = issuer) => ({ DPoP: oidc.getDPoPHandle(await config(clientId, at), { privateKey: k.privateKey, publicKey: k.publicKey }) });

/** A Check as Envoy sends it for GET /documents/d1 with these credentials. */
function check(s: Sidecar, authorization: string, proof?: string, method = 'GET', path = '/documents/d1') {
  return s.client.check(httpCheckRequest(method, path, { authorization, ...(proof ? { dpop: proof } : {}) }, { host: HOST }));
}

const headerOf = (res: Awaited<ReturnType<typeof check>>, name: string) => {
  const r = res.httpResponse;
  return r.case === 'deniedResponse' ? r.value.headers.find((h) => h.header?.key.toLowerCase() === name)?.header?.value : undefined;
};
const deniedStatus = (res: Awaited<ReturnType<typeof check>>) => (res.httpResponse.case === 'deniedResponse' ? res.httpResponse.value.status?.code : undefined);
const rejected = (reason: string) => metricValue(sidecar.metrics, 'auth_dpop_proofs_rejected_total', { reason });

beforeAll(async () => {
  sidecar = await startSidecar({ http_authz: { address: '127.0.0.1:0' }, token_module: { rate_limit: { login_per_minute: 1000 } } });
  ctx = sidecar.server.tokens!.ctx;
  issuer = sidecar.server.issuer!;
  await registerClient({ clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'] });
  await registerClient({ clientId: 'rs', type: 'confidential', grantTypes: ['client_credentials'] });
  await registerClient({ clientId: 'spa', type: 'public', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [SPA_REDIRECT], scopes: ['openid', 'offline_access'], firstParty: true });
  await registerClient({ clientId: 'web', type: 'confidential', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [SPA_REDIRECT], scopes: ['openid', 'offline_access'], firstParty: true });
  key = await makeDpopKey();
  boundToken = (await oidc.clientCredentialsGrant(await config('svc'), { scope: 'documents' }, await handle('svc', key))).access_token;
});

afterAll(async () => {
  await sidecar?.close();
});

describe('DPoP at the token endpoint', () => {
  it('advertises the proof algorithms in discovery', async () => {
    const doc = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc.dpop_signing_alg_values_supported).toEqual(ALGS.split(' '));
  });

  it('binds a client_credentials token to the proof key: token_type DPoP and cnf.jkt', async () => {
    const k = await makeDpopKey('EdDSA');
    const tokens = await oidc.clientCredentialsGrant(await config('svc'), { scope: 'documents' }, await handle('svc', k));
    expect(tokens.token_type).toBe('dpop');
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: k.jkt });
    const plain = await oidc.clientCredentialsGrant(await config('svc'), { scope: 'documents' });
    expect(plain.token_type).toBe('bearer');
    expect(decodeJwt(plain.access_token).cnf).toBeUndefined();
  });

  it('refuses an invalid or replayed proof with invalid_dpop_proof and counts the reason', async () => {
    const proof = await key.proof('POST', `${issuer}/oauth2/token`);
    const post = (p: string) =>
      fetch(`${issuer}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${secrets.svc}`).toString('base64')}`, dpop: p }, body: 'grant_type=client_credentials' });
    expect((await post(proof)).status).toBe(200);
    const before = await rejected('replay');
    const replay = await post(proof);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toEqual({ error: 'invalid_dpop_proof', error_description: 'the DPoP proof is invalid' });
    expect(await rejected('replay')).toBe(before + 1);
    const wrongUrl = await post(await key.proof('POST', `${issuer}/oauth2/introspect`));
    expect(wrongUrl.status).toBe(400);
    expect(((await wrongUrl.json()) as { error: string }).error).toBe('invalid_dpop_proof');
  });

  it('shows the binding on introspection (RFC 9449 §6.2)', async () => {
    const answer = await oidc.tokenIntrospection(await config('rs'), boundToken);
    expect(answer).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.jkt }, client_id: 'svc' });
  });
});

describe('DPoP on the Envoy Check path', () => {
  it('allows a bound token with a fresh proof of its key for this request', async () => {
    const res = await check(sidecar, `DPoP ${boundToken}`, await key.proof('GET', DOC_URL, { accessToken: boundToken }));
    expect(res.status?.code).toBe(0);
  });

  const cases: Array<[string, () => Promise<string | undefined>]> = [
    ['htm_mismatch', () => key.proof('POST', DOC_URL, { accessToken: boundToken })],
    ['htu_mismatch', () => key.proof('GET', `http://${HOST}/documents/d2`, { accessToken: boundToken })],
    ['iat_window', () => key.proof('GET', DOC_URL, { accessToken: boundToken, iat: Math.floor(Date.now() / 1000) - 120 })],
    ['ath_mismatch', () => key.proof('GET', DOC_URL, { accessToken: `${boundToken}x` })],
    ['jkt_mismatch', async () => (await makeDpopKey()).proof('GET', DOC_URL, { accessToken: boundToken })],
    ['bad_signature', async () => key.proof('GET', DOC_URL, { accessToken: boundToken, signWith: (await makeDpopKey()).privateKey })],
    ['malformed', async () => key.proof('GET', DOC_URL, { accessToken: boundToken, jwk: { ...key.publicJwk, d: 'private-part' } })],
    ['malformed', () => key.proof('GET', DOC_URL, { accessToken: boundToken, typ: 'JWT' })],
    ['missing', async () => undefined],
  ];
  it.each(cases)('denies with 401 invalid_dpop_proof on %s and counts it', async (reason, make) => {
    const before = await rejected(reason);
    const res = await check(sidecar, `DPoP ${boundToken}`, await make());
    expect(deniedStatus(res)).toBe(401);
    expect(headerOf(res, 'www-authenticate')).toBe(PROOF_CHALLENGE);
    expect(await rejected(reason)).toBe(before + 1);
  });

  it('accepts a proof once: the same proof again is a replay', async () => {
    const proof = await key.proof('GET', DOC_URL, { accessToken: boundToken });
    expect((await check(sidecar, `DPoP ${boundToken}`, proof)).status?.code).toBe(0);
    const before = await rejected('replay');
    const again = await check(sidecar, `DPoP ${boundToken}`, proof);
    expect(deniedStatus(again)).toBe(401);
    expect(headerOf(again, 'www-authenticate')).toBe(PROOF_CHALLENGE);
    expect(await rejected('replay')).toBe(before + 1);
  });

  it('refuses a bound token presented as a bearer token, even with a valid proof', async () => {
    const before = await rejected('bearer_scheme');
    const res = await check(sidecar, `Bearer ${boundToken}`, await key.proof('GET', DOC_URL, { accessToken: boundToken }));
    expect(deniedStatus(res)).toBe(401);
    expect(headerOf(res, 'www-authenticate')).toBe('Bearer realm="portcullis", error="invalid_token", error_description="DPoP-bound token presented as a bearer token"');
    expect(await rejected('bearer_scheme')).toBe(before + 1);
  });

  it('refuses an unbound token presented with the DPoP scheme', async () => {
    const plain = (await oidc.clientCredentialsGrant(await config('svc'), { scope: 'documents' })).access_token;
    const res = await check(sidecar, `DPoP ${plain}`, await key.proof('GET', DOC_URL, { accessToken: plain }));
    expect(deniedStatus(res)).toBe(401);
    expect(headerOf(res, 'www-authenticate')).toBe(`DPoP algs="${ALGS}", error="invalid_token", error_description="token is not DPoP-bound"`);
  });

  it('serves a resource request made by openid-client with DPoP through the HTTP ext_authz listener', async () => {
    const url = new URL(`http://127.0.0.1:${sidecar.server.httpAuthzPort}/documents/d1`);
    const cfg = await config('svc');
    const ok = await oidc.fetchProtectedResource(cfg, boundToken, url, 'GET', undefined, undefined, await handle('svc', key));
    expect(ok.status).toBe(200);
    // Without a proof, the listener answers 401 with a Bearer challenge, which openid-client raises.
    const bearer = await oidc.fetchProtectedResource(cfg, boundToken, url, 'GET').catch((e: unknown) => e as oidc.WWWAuthenticateChallengeError);
    expect(bearer).toBeInstanceOf(oidc.WWWAuthenticateChallengeError);
    expect((bearer as oidc.WWWAuthenticateChallengeError).status).toBe(401);
    expect((bearer as oidc.WWWAuthenticateChallengeError).cause[0]).toMatchObject({ scheme: 'bearer', parameters: { error: 'invalid_token' } });
  });

  it('checks htu against the configured external origins when a proxy rewrites the host', async () => {
    const behind = await startSidecar({ dpop: { htu_origins: ['https://docs.example.com'] }, token_module: { enabled: true } });
    try {
      await addClient(behind.server.tokens!.ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'], redirectUris: [], firstParty: false }).then((c) => (secrets['behind'] = c.secret!));
      const cfg = await oidc.discovery(new URL(behind.server.issuer!), 'svc', { client_secret: secrets.behind }, oidc.ClientSecretBasic(secrets.behind!), { execute: [oidc.allowInsecureRequests] });
      const token = (await oidc.clientCredentialsGrant(cfg, { scope: 'documents' }, { DPoP: oidc.getDPoPHandle(cfg, { privateKey: key.privateKey, publicKey: key.publicKey }) })).access_token;
      const external = await check(behind, `DPoP ${token}`, await key.proof('GET', 'https://docs.example.com/documents/d1', { accessToken: token }));
      expect(external.status?.code).toBe(0);
      const internal = await check(behind, `DPoP ${token}`, await key.proof('GET', DOC_URL, { accessToken: token }));
      expect(deniedStatus(internal)).toBe(401);
    } finally {
      await behind.close();
    }
  });
});

describe('context.dpop in policies', () => {
  it('lets a policy demand a sender-constrained token', async () => {
    const dir = tempDir('pc-dpop-policies');
    cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
    writeFileSync(join(dir, 'dpop.cedar'), '@id("read-needs-dpop")\nforbid (principal, action == Action::"read", resource is Document) unless { context.dpop };\n');
    const strict = await startSidecar({ policies: { dir } });
    try {
      const { secret } = await addClient(strict.server.tokens!.ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'], redirectUris: [], firstParty: false });
      const cfg = await oidc.discovery(new URL(strict.server.issuer!), 'svc', { client_secret: secret }, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
      const bearer = (await oidc.clientCredentialsGrant(cfg, { scope: 'documents' })).access_token;
      const bound = (await oidc.clientCredentialsGrant(cfg, { scope: 'documents' }, { DPoP: oidc.getDPoPHandle(cfg, { privateKey: key.privateKey, publicKey: key.publicKey }) })).access_token;
      const denied = await check(strict, `Bearer ${bearer}`);
      expect(deniedStatus(denied)).toBe(403);
      const allowed = await check(strict, `DPoP ${bound}`, await key.proof('GET', DOC_URL, { accessToken: bound }));
      expect(allowed.status?.code).toBe(0);
      expect(allowed.dynamicMetadata?.determining_policies).toEqual(['viewer-read']);
    } finally {
      await strict.close();
    }
  });
});

describe('DPoP on the app API', () => {
  const tokenPrincipal = async (proof?: { proof: string; method: string; url: string }) => ({ kind: { case: 'token' as const, value: boundToken }, ...(proof ? { dpop: proof } : {}) });
  const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a gRPC error'); }, (e: unknown) => e as ServiceError);

  it('decides for a bound token with the proof and request the application received', async () => {
    const app = createAppClient(sidecar.address);
    try {
      const url = 'https://app.example.com/documents/d1';
      const proof = await key.proof('GET', url, { accessToken: boundToken });
      const res = await app.check({ principal: await tokenPrincipal({ proof, method: 'GET', url }), action: 'read', resource: { type: 'Document', id: 'd1' } });
      expect(res.decision).toBe(Decision.ALLOW);
      const missing = await fail(app.check({ principal: await tokenPrincipal(), action: 'read', resource: { type: 'Document', id: 'd1' } }));
      expect(missing.code).toBe(status.UNAUTHENTICATED);
      const before = await rejected('htm_mismatch');
      const wrong = await fail(app.check({ principal: await tokenPrincipal({ proof: await key.proof('GET', url, { accessToken: boundToken }), method: 'DELETE', url }), action: 'read', resource: { type: 'Document', id: 'd1' } }));
      expect(wrong.code).toBe(status.UNAUTHENTICATED);
      expect(wrong.details).toContain('invalid DPoP proof');
      expect(await rejected('htm_mismatch')).toBe(before + 1);
    } finally {
      app.close();
    }
  });
});

describe('DPoP-bound refresh tokens and /userinfo', () => {
  async function signIn(clientId: string, k: DpopKey) {
    const user = await createTestUser(ctx, { prefix: clientId, roles: ['viewer'] });
    const cfg = await config(clientId);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(cfg, { redirect_uri: SPA_REDIRECT, scope: 'openid offline_access', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    const { callback } = await completeAuthorization(url, { username: user.username, password: user.password });
    const tokens = await oidc.authorizationCodeGrant(cfg, callback, { pkceCodeVerifier: verifier, expectedState: state }, undefined, await handle(clientId, k));
    return { cfg, user, tokens };
  }

  it("binds a public client's refresh tokens to its key: refreshing needs a proof of that key", async () => {
    const k = await makeDpopKey();
    const { cfg, tokens } = await signIn('spa', k);
    expect(tokens.token_type).toBe('dpop');
    const introspected = await oidc.tokenIntrospection(await config('rs'), tokens.refresh_token!);
    expect(introspected).toMatchObject({ active: false }); // refresh tokens are introspectable only by their own client
    const noProof = await oidc.refreshTokenGrant(cfg, tokens.refresh_token!).catch((e: unknown) => e as oidc.ResponseBodyError);
    expect(noProof).toMatchObject({ error: 'invalid_grant' });
    const otherKey = await oidc.refreshTokenGrant(cfg, tokens.refresh_token!, undefined, await handle('spa', await makeDpopKey())).catch((e: unknown) => e as oidc.ResponseBodyError);
    expect(otherKey).toMatchObject({ error: 'invalid_grant' });
    // The refused attempts did not spend the token: the key holder still refreshes, and stays bound.
    const refreshed = await oidc.refreshTokenGrant(cfg, tokens.refresh_token!, undefined, await handle('spa', k));
    expect(refreshed.token_type).toBe('dpop');
    expect(decodeJwt(refreshed.access_token).cnf).toEqual({ jkt: k.jkt });
  });

  it("leaves a confidential client's refresh tokens unbound (client authentication binds them)", async () => {
    const { cfg, tokens } = await signIn('web', await makeDpopKey());
    expect(tokens.token_type).toBe('dpop');
    const refreshed = await oidc.refreshTokenGrant(cfg, tokens.refresh_token!);
    expect(refreshed.token_type).toBe('bearer');
  });

  it('answers /userinfo for a bound token only with a proof (DPoP scheme)', async () => {
    const k = await makeDpopKey();
    const { cfg, user, tokens } = await signIn('spa', k);
    const info = await oidc.fetchUserInfo(cfg, tokens.access_token, user.user.id, await handle('spa', k));
    expect(info.sub).toBe(user.user.id);
    const asBearer = await fetch(`${issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const badProof = await fetch(`${issuer}/userinfo`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await k.proof('POST', `${issuer}/userinfo`, { accessToken: tokens.access_token }) } });
    expect(badProof.status).toBe(401);
    expect(badProof.headers.get('www-authenticate')).toBe(`DPoP algs="${ALGS}", error="invalid_dpop_proof"`);
  });
});

describe('DPoP server nonces (dpop.require_nonce)', () => {
  it('asks for a nonce with use_dpop_nonce and a DPoP-Nonce header, then accepts a proof carrying it', async () => {
    const strict = await startSidecar({ dpop: { require_nonce: true } });
    try {
      const { secret } = await addClient(strict.server.tokens!.ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: [], roles: [], redirectUris: [], firstParty: false });
      const tokenUrl = `${strict.server.issuer}/oauth2/token`;
      const post = async (nonce?: string) =>
        fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}`, dpop: await key.proof('POST', tokenUrl, nonce ? { nonce } : {}) }, body: 'grant_type=client_credentials' });
      const first = await post();
      expect(first.status).toBe(400);
      expect(await first.json()).toEqual({ error: 'use_dpop_nonce', error_description: 'a DPoP nonce is required' });
      const nonce = first.headers.get('dpop-nonce');
      expect(nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
      const second = await post(nonce!);
      expect(second.status).toBe(200);
      expect(((await second.json()) as { token_type: string }).token_type).toBe('DPoP');
      expect(second.headers.get('dpop-nonce')).toBeTruthy();
      // openid-client, given the use_dpop_nonce answer, retries once with the nonce (RFC 9449 §8).
      const cfg = await oidc.discovery(new URL(strict.server.issuer!), 'svc', { client_secret: secret }, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
      const nonceRefusals = await metricValue(strict.metrics, 'auth_dpop_proofs_rejected_total', { reason: 'nonce' });
      const viaClient = await oidc.clientCredentialsGrant(cfg, {}, { DPoP: oidc.getDPoPHandle(cfg, { privateKey: key.privateKey, publicKey: key.publicKey }) });
      expect(await metricValue(strict.metrics, 'auth_dpop_proofs_rejected_total', { reason: 'nonce' })).toBe(nonceRefusals + 1);
      expect(viaClient.token_type).toBe('dpop');
    } finally {
      await strict.close();
    }
  });
});
