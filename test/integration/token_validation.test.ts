import { createPrivateKey, generateKeyPairSync, sign as cryptoSign, createHmac } from 'node:crypto';
import { SignJWT, exportJWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import type { ConfigInput } from '../../src/config/index.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { healthCheck, metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { catchAllRoutes, tempDir } from '../helpers/temp_dir.js';

type IssuerInput = NonNullable<ConfigInput['issuers']>[number];

interface Env {
  idp: JwksServer;
  key: SigningKey;
  sidecar: Sidecar;
}

const open: Env[] = [];

async function setup(issuer: Partial<IssuerInput> = {}, jwks: Record<string, number> = {}): Promise<Env> {
  const idp = await startJwksServer();
  const key = await makeKey('k1');
  idp.keys = [key.publicJwk];
  const usesDiscovery = issuer.discovery === true;
  const sidecar = await startSidecar({
    issuers: [{ issuer: idp.issuer, ...(usesDiscovery ? {} : { jwks_uri: idp.jwksUri }), audiences: ['api'], ...issuer, jwks: { request_budget_ms: 1000, fetch_timeout_ms: 500, ...jwks } }],
  });
  const env = { idp, key, sidecar };
  open.push(env);
  return env;
}

afterAll(async () => {
  for (const e of open) {
    await e.sidecar.close();
    await e.idp.close();
  }
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function checkWith(env: Env, jwt: string, path = '/documents/d1'): Promise<CheckResponse> {
  return env.sidecar.client.check(httpCheckRequest('GET', path, { authorization: `Bearer ${jwt}` }));
}

function challenge(res: CheckResponse): string | undefined {
  if (res.httpResponse.case !== 'deniedResponse') return undefined;
  return res.httpResponse.value.headers.find((h) => h.header?.key === 'www-authenticate')?.header?.value;
}

function expectInvalidToken(res: CheckResponse, description?: string): void {
  expect(res.httpResponse.case).toBe('deniedResponse');
  if (res.httpResponse.case !== 'deniedResponse') return;
  expect(res.httpResponse.value.status?.code).toBe(401);
  expect(res.status?.code).toBe(16);
  expect(challenge(res)).toMatch(/^Bearer realm="portcullis", error="invalid_token", error_description="[^"]+"$/);
  if (description) expect(challenge(res)).toContain(`error_description="${description}"`);
  expect(JSON.parse(res.httpResponse.value.body)).toMatchObject({ error: 'invalid_token' });
}

const now = () => Math.floor(Date.now() / 1000);

describe('token validation', () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup();
  });
  const valid = (claims: Record<string, unknown> = {}, opts: Partial<Parameters<typeof signToken>[1]> = {}) =>
    signToken({ sub: 'vic', roles: ['viewer'], ...claims }, { key: env.key, issuer: env.idp.issuer, audience: 'api', ...opts });

  it('accepts a valid token', async () => {
    const res = await checkWith(env, await valid());
    expect(res.httpResponse.case).toBe('okResponse');
  });

  it.each(['none', 'None', 'NONE', 'nOnE'])('rejects alg %s with an empty or fake signature', async (alg) => {
    const unsigned = `${b64({ alg, typ: 'at+jwt', kid: 'k1' })}.${b64({ sub: 'admin', roles: ['admin'], iss: env.idp.issuer, aud: 'api', exp: now() + 600 })}`;
    expectInvalidToken(await checkWith(env, `${unsigned}.`), 'malformed token');
    expectInvalidToken(await checkWith(env, `${unsigned}.${b64('sig')}`), 'algorithm not allowed');
  });

  it('rejects an HMAC token signed with the issuer public key as secret', async () => {
    const secrets = [JSON.stringify(env.key.publicJwk), Buffer.from(JSON.stringify(env.key.publicJwk))];
    for (const secret of secrets) {
      const data = `${b64({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' })}.${b64({ sub: 'admin', roles: ['admin'], iss: env.idp.issuer, aud: 'api', exp: now() + 600 })}`;
      const sig = createHmac('sha256', secret).update(data).digest('base64url');
      expectInvalidToken(await checkWith(env, `${data}.${sig}`), 'algorithm not allowed');
    }
  });

  it('rejects expired and not-yet-valid tokens', async () => {
    expectInvalidToken(await checkWith(env, await valid({}, { now: now() - 3600, ttl: 60 })), 'token expired');
    expectInvalidToken(await checkWith(env, await valid({ nbf: now() + 600 })), 'token not yet valid');
  });

  it('rejects a far-future iat', async () => {
    expectInvalidToken(await checkWith(env, await valid({}, { now: now() + 3600 })), 'invalid token claims');
  });

  it('reports the signature, not the expiry, for an expired token with a bad signature', async () => {
    const expired = await valid({}, { now: now() - 3600, ttl: 60 });
    const [h, p] = expired.split('.');
    expectInvalidToken(await checkWith(env, `${h}.${p}.${b64('x'.repeat(64))}`), 'invalid signature');
  });

  it('rejects an unknown issuer and a wrong audience', async () => {
    expectInvalidToken(await checkWith(env, await valid({}, { issuer: 'https://evil.example' })), 'untrusted issuer');
    expectInvalidToken(await checkWith(env, await valid({}, { audience: 'other-api' })), 'invalid token claims');
    expectInvalidToken(await checkWith(env, await valid({}, { audience: undefined })), 'invalid token claims');
  });

  it('rejects tokens without sub or exp', async () => {
    const noSub = await new SignJWT({ roles: ['viewer'] }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(env.idp.issuer).setAudience('api').setExpirationTime(now() + 60).sign(env.key.privateKey);
    expectInvalidToken(await checkWith(env, noSub));
    const noExp = await new SignJWT({ sub: 'vic' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(env.idp.issuer).setAudience('api').sign(env.key.privateKey);
    expectInvalidToken(await checkWith(env, noExp));
  });

  it.each([
    ['not a jwt', 'garbage'],
    ['bad base64', '!!!.@@@.###'],
    ['header is not JSON', `${b64('nope')}.${b64({ sub: 'x' })}.${b64('s')}`],
    ['five-part JWE', 'a.b.c.d.e'],
    ['invalid UTF-8 in header', `${Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url')}.${b64({ sub: 'x' })}.${b64('s')}`],
    ['oversized', `${'a'.repeat(20_000)}.${'b'.repeat(20_000)}.c`],
  ])('rejects a malformed token (%s)', async (_name, jwt) => {
    expectInvalidToken(await checkWith(env, jwt));
  });

  it('rejects a token signed by a key the JWKS does not hold, after one refetch per cooldown', async () => {
    const stranger = await makeKey('stranger');
    const before = env.idp.jwksRequests;
    const forged = await signToken({ sub: 'admin', roles: ['admin'] }, { key: stranger, issuer: env.idp.issuer, audience: 'api' });
    expectInvalidToken(await checkWith(env, forged), 'signing key not found');
    expect(env.idp.jwksRequests).toBe(before + 1);
    const again = await signToken({ sub: 'admin', roles: ['admin'] }, { key: await makeKey('stranger2'), issuer: env.idp.issuer, audience: 'api' });
    expectInvalidToken(await checkWith(env, again), 'signing key not found');
    expect(env.idp.jwksRequests).toBe(before + 1); // still in the 30 s cooldown
    expect(await metricValue(env.sidecar.metrics, 'auth_jwks_unknown_kid_refetch_total', { issuer: env.idp.issuer })).toBe(1);
  });

  it('rejects a token whose kid matches but whose signature is from another key', async () => {
    const impostor = await makeKey('k1');
    expectInvalidToken(await checkWith(env, await signToken({ sub: 'admin', roles: ['admin'] }, { key: impostor, issuer: env.idp.issuer, audience: 'api' })), 'invalid signature');
  });

  it('verifies a repeated token once and answers the rest from the cache', async () => {
    const jwt = await valid({ sub: 'cache-me' });
    const hits = await metricValue(env.sidecar.metrics, 'auth_token_cache_hits_total');
    const verifies = await metricValue(env.sidecar.metrics, 'auth_token_verify_latency_seconds_count');
    for (let i = 0; i < 5; i++) await checkWith(env, jwt);
    expect(await metricValue(env.sidecar.metrics, 'auth_token_verify_latency_seconds_count')).toBe(verifies + 1);
    expect(await metricValue(env.sidecar.metrics, 'auth_token_cache_hits_total')).toBe(hits + 4);
  });
});

describe('JWKS key management', () => {
  afterEach(() => {
    for (const e of open) e.idp.mode = 'ok';
  });

  it('accepts a rotated-in key after exactly one refetch', async () => {
    const env = await setup();
    const k2 = await makeKey('k2');
    env.idp.keys = [env.key.publicJwk, k2.publicJwk];
    const before = env.idp.jwksRequests;
    const jwt = await signToken({ sub: 'vic', roles: ['viewer'] }, { key: k2, issuer: env.idp.issuer, audience: 'api' });
    expect((await checkWith(env, jwt)).httpResponse.case).toBe('okResponse');
    expect(env.idp.jwksRequests).toBe(before + 1);
    expect((await checkWith(env, await signToken({ sub: 'v2', roles: ['viewer'] }, { key: k2, issuer: env.idp.issuer, audience: 'api' }))).httpResponse.case).toBe('okResponse');
    expect(env.idp.jwksRequests).toBe(before + 1);
  });

  it.each(['error500', 'garbage', 'hang', 'redirect', 'huge'] as const)('keeps serving cached keys while the JWKS endpoint fails (%s)', async (mode) => {
    const env = await setup({}, { request_budget_ms: 200, fetch_timeout_ms: 300, max_bytes: 64 * 1024 });
    expect((await checkWith(env, await signToken({ sub: 'vic', roles: ['viewer'] }, { key: env.key, issuer: env.idp.issuer, audience: 'api' }))).httpResponse.case).toBe('okResponse');
    env.idp.mode = mode;
    // An unknown kid forces a refetch against the failing endpoint; it must not break the known key.
    const started = Date.now();
    const stranger = await signToken({ sub: 'x' }, { key: await makeKey('nope'), issuer: env.idp.issuer, audience: 'api' });
    expectInvalidToken(await checkWith(env, stranger));
    expect(Date.now() - started).toBeLessThan(1500);
    const res = await checkWith(env, await signToken({ sub: 'vic2', roles: ['viewer'] }, { key: env.key, issuer: env.idp.issuer, audience: 'api' }));
    expect(res.httpResponse.case).toBe('okResponse');
    await expect.poll(() => metricValue(env.sidecar.metrics, 'auth_jwks_fetch_errors_total', { issuer: env.idp.issuer }), { timeout: 3000 }).toBeGreaterThan(0);
  });

  it('loads every issuer\'s keys before reporting SERVING', async () => {
    const env = await setup();
    expect(env.idp.jwksRequests).toBe(1);
    expect((await healthCheck(env.sidecar.address)).status).toBe(1); // SERVING
    const res = await checkWith(env, await signToken({ sub: 'vic', roles: ['viewer'] }, { key: env.key, issuer: env.idp.issuer, audience: 'api' }));
    expect(res.httpResponse.case).toBe('okResponse');
    expect(env.idp.jwksRequests).toBe(1);
  });

  it('starts within the fetch timeout when an issuer is down, and takes its keys once it recovers', async () => {
    const idp = await startJwksServer();
    const key = await makeKey('k1');
    idp.keys = [key.publicJwk];
    idp.mode = 'hang';
    const started = Date.now();
    const sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, jwks: { fetch_timeout_ms: 300, request_budget_ms: 1000, cooldown_seconds: 0 } }] });
    try {
      expect(Date.now() - started).toBeLessThan(5000);
      expect(sidecar.logs.some((l) => l.msg === 'no signing keys yet for issuer; its tokens are rejected until a fetch succeeds')).toBe(true);
      const jwt = await signToken({ sub: 'vic', roles: ['viewer'] }, { key, issuer: idp.issuer });
      const down = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${jwt}` }));
      expect(challenge(down)).toContain('error_description="signing keys unavailable"');
      idp.mode = 'ok';
      const up = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${jwt}` }));
      expect(up.httpResponse.case).toBe('okResponse');
    } finally {
      await sidecar.close();
      await idp.close();
    }
  });

  it('ignores RSA keys under 2048 bits in the JWKS', async () => {
    const env = await setup({ algorithms: ['RS256', 'ES256'] });
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(await exportJWK(weak.publicKey)), kid: 'weak', alg: 'RS256', use: 'sig' };
    env.idp.keys = [env.key.publicJwk, jwk];
    const data = `${b64({ alg: 'RS256', kid: 'weak', typ: 'at+jwt' })}.${b64({ sub: 'admin', roles: ['admin'], iss: env.idp.issuer, aud: 'api', exp: now() + 600 })}`;
    const sig = cryptoSign('sha256', Buffer.from(data), createPrivateKey(weak.privateKey.export({ format: 'pem', type: 'pkcs8' }))).toString('base64url');
    expectInvalidToken(await checkWith(env, `${data}.${sig}`), 'signing key not found');
  });

  it('finds the JWKS through OIDC discovery', async () => {
    const env = await setup({ discovery: true });
    const res = await checkWith(env, await signToken({ sub: 'vic', roles: ['viewer'] }, { key: env.key, issuer: env.idp.issuer, audience: 'api' }));
    expect(res.httpResponse.case).toBe('okResponse');
  });
});

describe('issuer claim mapping', () => {
  it('reads roles from a dotted claim path and enforces required_typ', async () => {
    const env = await setup({ roles_claim: 'realm_access.roles', required_typ: 'at+jwt' });
    const jwt = await signToken({ sub: 'kc-user', realm_access: { roles: ['editor'] } }, { key: env.key, issuer: env.idp.issuer, audience: 'api' });
    const res = await env.sidecar.client.check(httpCheckRequest('PUT', '/documents/d2', { authorization: `Bearer ${jwt}` }));
    expect(res.httpResponse.case).toBe('okResponse');
    const idToken = await signToken({ sub: 'kc-user', realm_access: { roles: ['editor'] } }, { key: env.key, issuer: env.idp.issuer, audience: 'api', header: { typ: 'JWT' } });
    expectInvalidToken(await checkWith(env, idToken), 'invalid token claims');
  });

  it('gives policies the token scopes (string or scp array), issuer, client id and MFA state', async () => {
    const idp = await startJwksServer();
    const key = await makeKey('k1');
    idp.keys = [key.publicJwk];
    const dir = tempDir('pc-scopes', {
      'routes.yaml': catchAllRoutes(false),
      'p.cedar': `@id("writer") permit(principal, action, resource) when {
        context.scopes.contains("docs:write") && context.issuer == "${idp.issuer}" && context.client_id == "cli-1" && context.mfa && context.authenticated
      };`,
    });
    const sidecar = await startSidecar({ policies: { dir }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri }] });
    try {
      const ask = async (claims: Record<string, unknown>) => {
        const jwt = await signToken({ sub: 'u', amr: ['pwd', 'otp'], ...claims }, { key, issuer: idp.issuer });
        return (await sidecar.client.check(httpCheckRequest('GET', '/x', { authorization: `Bearer ${jwt}` }))).httpResponse.case;
      };
      expect(await ask({ scope: 'docs:read docs:write', client_id: 'cli-1' })).toBe('okResponse');
      expect(await ask({ scp: ['docs:write'], azp: 'cli-1' })).toBe('okResponse');
      expect(await ask({ scope: 'docs:read', client_id: 'cli-1' })).toBe('deniedResponse');
      expect(await ask({ scope: 'docs:write', client_id: 'other' })).toBe('deniedResponse');
      expect(await ask({ scope: 'docs:write', client_id: 'cli-1', amr: ['pwd'] })).toBe('deniedResponse');
    } finally {
      await sidecar.close();
      await idp.close();
    }
  });

  it('does not let claims smuggle Cedar entity or extension escapes into principal attributes', async () => {
    // No schema: every claim becomes an attribute. The rule allows only a principal whose
    // `manager` attribute IS the entity User::"alice" - a string claim can never satisfy it.
    const dir = tempDir('pc-smuggle', {
      'routes.yaml': catchAllRoutes(false),
      'p.cedar': '@id("mgr") permit(principal, action, resource) when { principal has manager && principal.manager == User::"alice" };',
    });
    const idp = await startJwksServer();
    const key = await makeKey('k1');
    idp.keys = [key.publicJwk];
    const sidecar = await startSidecar({ policies: { dir }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri }] });
    try {
      const sign = (manager: unknown) => signToken({ sub: 'mallory', manager }, { key, issuer: idp.issuer });
      const forged = await sidecar.client.check(httpCheckRequest('GET', '/x', { authorization: `Bearer ${await sign({ __entity: { type: 'User', id: 'alice' } })}` }));
      expect(forged.httpResponse.case).toBe('deniedResponse');
      const forgedExtn = await sidecar.client.check(httpCheckRequest('GET', '/x', { authorization: `Bearer ${await sign({ __extn: { fn: 'ip', arg: '1.2.3.4' } })}` }));
      expect(forgedExtn.httpResponse.case).toBe('deniedResponse');
      expect(forgedExtn.status?.code).toBe(7);
    } finally {
      await sidecar.close();
      await idp.close();
    }
  });
});
