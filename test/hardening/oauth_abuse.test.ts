import { createHash, randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { addClient } from '../../src/issuer/clients.js';
import type { IssuerContext } from '../../src/issuer/context.js';
import { setDisabled } from '../../src/issuer/users.js';
import { invalidTokenChallenge, moved, seen, seriesOf } from '../helpers/corpus.js';
import { completeAuthorization, createTestUser, openAuthorization, type TestUser } from '../helpers/login_flow.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * OAuth abuse corpus against the embedded token module over real HTTP: each case the exact
 * status, error and `auth_oauth_errors_total{endpoint,error}` series it moves (and the audit or
 * reuse metric where one applies). DPoP rows (proof replay, htm/htu/ath/jkt mismatches, nonces)
 * are in dpop_corpus.test.ts.
 */
const ADMIN_KEY = 'abuse-corpus-admin-key-0123456789';
const REDIRECT = 'https://app.example/cb';
const MAX_FAILURES = 3;
let sidecar: Sidecar;
let ctx: IssuerContext;
let base = '';
let admin = '';
let svcSecret = '';
let ipCounter = 0;

beforeAll(async () => {
  sidecar = await startSidecar({
    admin: { api_key: ADMIN_KEY },
    http: { trusted_proxy_hops: 1 },
    token_module: { lockout: { max_failures: MAX_FAILURES, base_seconds: 60, max_seconds: 600 }, rate_limit: { login_per_minute: 0, authorize_per_minute: 0 } },
  });
  ctx = sidecar.server.tokens!.ctx;
  base = `http://127.0.0.1:${sidecar.server.httpPort}`;
  admin = `http://127.0.0.1:${sidecar.server.adminPort}`;
  for (const clientId of ['web', 'web2']) {
    await addClient(ctx, { clientId, type: 'public', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT], scopes: ['openid', 'profile', 'offline_access'], roles: [], firstParty: true });
  }
  svcSecret = (await addClient(ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], redirectUris: [], scopes: ['read'], roles: ['service'], firstParty: false })).secret!;
});

afterAll(async () => {
  await sidecar?.close();
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

async function read(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: assertions on text say so
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Each request from its own client IP (one trusted proxy hop), so per-IP limits never interfere. */
const nextIp = () => `10.77.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;
const form = async (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  read(await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': nextIp(), ...headers }, body: new URLSearchParams(fields).toString() }));
const json = async (path: string, body: unknown) => read(await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': nextIp() }, body: JSON.stringify(body) }));
const oauthErrors = () => seriesOf(sidecar.metrics, 'auth_oauth_errors_total');
const series = (endpoint: string, error: string, n = 1) => ({ [`endpoint=${endpoint},error=${error}`]: n });

/** Runs `act`, then checks the replies and exactly which auth_oauth_errors_total series moved. */
async function expectOAuth(act: () => Promise<Reply | Reply[]>, expected: Array<{ status: number; error?: string }>, metric: Record<string, number>): Promise<Reply[]> {
  const before = await oauthErrors();
  const got = await act();
  const replies = Array.isArray(got) ? got : [got];
  expect(replies.map((r) => ({ status: r.status, ...(r.json.error !== undefined ? { error: r.json.error } : {}) }))).toEqual(expected.map((e) => ({ status: e.status, ...(e.error ? { error: e.error } : {}) })));
  for (const r of replies) if (r.status >= 400) expect(r.headers.get('cache-control')).toBe('no-store');
  expect(moved(before, await oauthErrors())).toEqual(metric);
  return replies;
}

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

function authorizeUrl(params: Record<string, string>): URL {
  const url = new URL(`${base}/oauth2/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'web', redirect_uri: REDIRECT, scope: 'openid offline_access', state: 'st', ...params })) url.searchParams.set(k, v);
  return url;
}

/** A fresh authorization code for `user` through the login page, with its PKCE verifier. */
async function codeFor(user: TestUser): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkce();
  const { callback } = await completeAuthorization(authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' }), { username: user.username, password: user.password });
  return { code: callback.searchParams.get('code')!, verifier };
}

const exchange = (code: string, verifier: string | undefined, extra: Record<string, string> = {}) =>
  form('/oauth2/token', { grant_type: 'authorization_code', client_id: 'web', code, redirect_uri: REDIRECT, ...(verifier === undefined ? {} : { code_verifier: verifier }), ...extra });
const refresh = (token: string, clientId = 'web') => form('/oauth2/token', { grant_type: 'refresh_token', client_id: clientId, refresh_token: token });

async function tokensFor(user: TestUser): Promise<Record<string, string>> {
  const { code, verifier } = await codeFor(user);
  const r = await exchange(code, verifier);
  expect(r.status).toBe(200);
  return r.json as Record<string, string>;
}

describe('refresh tokens', () => {
  it('replay of a rotated refresh token: invalid_grant, counted as reuse, and the whole family dies', async () => {
    const user = await createTestUser(ctx, { prefix: 'replay' });
    const first = await tokensFor(user);
    const rotated = (await refresh(first.refresh_token!)).json as Record<string, string>;
    const reuse = await metricValue(sidecar.metrics, 'auth_refresh_token_reuse_total');
    await expectOAuth(() => refresh(first.refresh_token!), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
    expect(await metricValue(sidecar.metrics, 'auth_refresh_token_reuse_total')).toBe(reuse + 1);
    await expectOAuth(() => refresh(rotated.refresh_token!), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
  });

  it('concurrent refresh with one token: exactly one wins', async () => {
    const user = await createTestUser(ctx, { prefix: 'concurrent' });
    const { refresh_token: token } = await tokensFor(user);
    const before = await oauthErrors();
    const replies = await Promise.all([refresh(token!), refresh(token!), refresh(token!)]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    expect(replies.filter((r) => r.status === 400).map((r) => r.json.error)).toEqual(['invalid_grant', 'invalid_grant']);
    expect(moved(before, await oauthErrors())).toEqual(series('/oauth2/token', 'invalid_grant', 2));
  });

  it('a refresh token presented by another client: invalid_grant, and it stays usable by its own client', async () => {
    const user = await createTestUser(ctx, { prefix: 'otherclient' });
    const { refresh_token: token } = await tokensFor(user);
    await expectOAuth(() => refresh(token!, 'web2'), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
    await expectOAuth(() => refresh(token!), [{ status: 200 }], {});
  });
});

describe('authorization codes and PKCE', () => {
  it('code replay: invalid_grant, and the access token the first exchange issued is revoked at the ext_authz Check', async () => {
    const user = await createTestUser(ctx, { prefix: 'codereplay', roles: ['viewer'] });
    const { code, verifier } = await codeFor(user);
    const first = await exchange(code, verifier);
    expect(first.status).toBe(200);
    const before = seen(await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${first.json.access_token}` })));
    expect(before.status).toBe(200);
    await expectOAuth(() => exchange(code, verifier), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
    const after = seen(await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${first.json.access_token}` })));
    expect({ status: after.status, www: after.wwwAuthenticate }).toEqual({ status: 401, www: invalidTokenChallenge('token revoked') });
    await expectOAuth(() => refresh(String(first.json.refresh_token)), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
  });

  it.each([
    ['a trailing slash', `${REDIRECT}/`],
    ['an upper-case host', 'https://APP.example/cb'],
    ['an added query', `${REDIRECT}?x=1`],
    ['http instead of https', 'http://app.example/cb'],
    ['a different port', 'https://app.example:8443/cb'],
    ['an empty value', ''],
  ])('redirect_uri at the token endpoint differing by %s: invalid_grant', async (_what, uri) => {
    const user = await createTestUser(ctx, { prefix: 'redirect' });
    const { code, verifier } = await codeFor(user);
    await expectOAuth(() => exchange(code, verifier, { redirect_uri: uri }), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
  });

  it.each([
    ['a trailing slash', `${REDIRECT}/`],
    ['an upper-case path', 'https://app.example/CB'],
    ['an added query', `${REDIRECT}?next=https://evil.example`],
    ['a fragment', `${REDIRECT}#x`],
    ['userinfo before an attacker host', 'https://app.example@evil.example/cb'],
    ['a dot segment', 'https://app.example/cb/../evil'],
    ['percent-encoding', 'https://app.example/%63b'],
    ['another host', 'https://evil.example/cb'],
  ])('redirect_uri at the authorization endpoint differing by %s: a 400 page, redirected nowhere', async (_what, uri) => {
    const { challenge } = pkce();
    const { response } = await openAuthorization(authorizeUrl({ redirect_uri: uri, code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await response.text()).toContain('redirect_uri is not registered for this client');
  });

  it.each([
    ['code_challenge_method=plain', { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }],
    ['no code_challenge_method', { code_challenge: 'a'.repeat(43) }],
    ['no code_challenge', {}],
    ['a code_challenge of the wrong length', { code_challenge: 'a'.repeat(42), code_challenge_method: 'S256' }],
  ])('PKCE downgrade at the authorization endpoint (%s): sent back to the client as invalid_request', async (_what, params: Record<string, string>) => {
    const { response } = await openAuthorization(authorizeUrl(params));
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({ error: 'invalid_request', state: 'st' });
    expect(location.searchParams.get('code')).toBeNull();
  });

  it('PKCE at the token endpoint: no verifier is invalid_request and leaves the code usable; the challenge as verifier (plain downgrade) is invalid_grant and spends it', async () => {
    const user = await createTestUser(ctx, { prefix: 'pkce' });
    const { code, verifier } = await codeFor(user);
    await expectOAuth(() => exchange(code, undefined), [{ status: 400, error: 'invalid_request' }], series('/oauth2/token', 'invalid_request'));
    await expectOAuth(() => exchange(code, verifier), [{ status: 200 }], {});
    const second = await codeFor(user);
    const challenge = createHash('sha256').update(second.verifier).digest('base64url');
    await expectOAuth(() => exchange(second.code, challenge), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
    await expectOAuth(() => exchange(second.code, second.verifier), [{ status: 400, error: 'invalid_grant' }], series('/oauth2/token', 'invalid_grant'));
  });
});

describe('login: brute force, lockout, TOTP reuse', () => {
  it(`locks an account after ${MAX_FAILURES} wrong passwords: even the right one then gets the same invalid_credentials, and the lock is counted`, async () => {
    const user = await createTestUser(ctx, { prefix: 'brute' });
    const locks = await metricValue(sidecar.metrics, 'auth_login_lockouts_total');
    const attempts = Array.from({ length: MAX_FAILURES }, (_, i) => ({ username: user.username, password: `guess-${i}` }));
    await expectOAuth(
      async () => {
        const out: Reply[] = [];
        for (const a of attempts) out.push(await json('/login', a));
        return out;
      },
      attempts.map(() => ({ status: 401, error: 'invalid_credentials' })),
      series('/login', 'invalid_credentials', MAX_FAILURES),
    );
    expect(await metricValue(sidecar.metrics, 'auth_login_lockouts_total')).toBe(locks + 1);
    const lockedFailures = await metricValue(sidecar.metrics, 'auth_login_failures_total', { reason: 'account_locked' });
    await expectOAuth(() => json('/login', { username: user.username, password: user.password }), [{ status: 401, error: 'invalid_credentials' }], series('/login', 'invalid_credentials'));
    expect(await metricValue(sidecar.metrics, 'auth_login_failures_total', { reason: 'account_locked' })).toBe(lockedFailures + 1);
  });

  it('refuses a TOTP code used once already, even with a new mfa_token (invalid_mfa, counted as totp_replayed)', async () => {
    const user = await createTestUser(ctx, { prefix: 'totp', mfa: true });
    const code = await generate({ secret: user.totpSecret! });
    const start = async () => (await json('/login', { username: user.username, password: user.password })).json.mfa_token as string;
    await expectOAuth(async () => json('/login/mfa', { mfa_token: await start(), code }), [{ status: 200 }], {});
    const replayed = await metricValue(sidecar.metrics, 'auth_login_failures_total', { reason: 'totp_replayed' });
    await expectOAuth(async () => json('/login/mfa', { mfa_token: await start(), code }), [{ status: 401, error: 'invalid_mfa' }], series('/login/mfa', 'invalid_mfa'));
    expect(await metricValue(sidecar.metrics, 'auth_login_failures_total', { reason: 'totp_replayed' })).toBe(replayed + 1);
  });
});

describe('enumeration', () => {
  it('answers an unknown user, a wrong password, a disabled and a locked account with byte-identical status, headers and body', async () => {
    const wrong = await createTestUser(ctx, { prefix: 'enum-wrong' });
    const disabled = await createTestUser(ctx, { prefix: 'enum-disabled' });
    await setDisabled(ctx, disabled.username, true);
    const locked = await createTestUser(ctx, { prefix: 'enum-locked' });
    for (let i = 0; i < MAX_FAILURES; i++) await json('/login', { username: locked.username, password: 'nope' });
    const replies = await expectOAuth(
      async () => [
        await json('/login', { username: 'no-such-user-x', password: 'whatever-1' }),
        await json('/login', { username: wrong.username, password: 'whatever-1' }),
        await json('/login', { username: disabled.username, password: disabled.password }),
        await json('/login', { username: locked.username, password: locked.password }),
      ],
      Array.from({ length: 4 }, () => ({ status: 401, error: 'invalid_credentials' })),
      series('/login', 'invalid_credentials', 4),
    );
    const visible = (r: Reply) => ({ body: r.text, type: r.headers.get('content-type'), length: r.headers.get('content-length'), cache: r.headers.get('cache-control'), www: r.headers.get('www-authenticate') });
    for (const r of replies) expect(visible(r)).toEqual(visible(replies[0]!));
  });

  it('takes about as long for an unknown user as for a wrong password (the argon2id work is done either way)', async () => {
    const user = await createTestUser(ctx, { prefix: 'enum-time' });
    const time = async (username: string) => {
      const t = performance.now();
      await json('/login', { username, password: 'wrong-password-1' });
      return performance.now() - t;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const unknown: number[] = [];
    const known: number[] = [];
    await time('ghost-warmup');
    await time(user.username);
    // Interleaved, so load on the machine hits both alike. The known account locks on the way:
    // a locked account does the same argon2id work, so every sample still compares like with like.
    for (let i = 0; i < 7; i++) {
      unknown.push(await time(`ghost-${i}-${randomBytes(3).toString('hex')}`));
      known.push(await time(user.username));
    }
    const ratio = median(unknown) / median(known);
    expect(ratio, `unknown ${unknown.map(Math.round).join(',')} ms vs known ${known.map(Math.round).join(',')} ms`).toBeGreaterThan(0.5);
    expect(ratio, `unknown ${unknown.map(Math.round).join(',')} ms vs known ${known.map(Math.round).join(',')} ms`).toBeLessThan(2);
  });

  it('answers an unknown client and a wrong client secret with the same invalid_client', async () => {
    const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
    const replies = await expectOAuth(
      async () => [await form('/oauth2/token', { grant_type: 'client_credentials' }, basic('no-such-client', 'x')), await form('/oauth2/token', { grant_type: 'client_credentials' }, basic('svc', `${svcSecret}x`))],
      [{ status: 401, error: 'invalid_client' }, { status: 401, error: 'invalid_client' }],
      series('/oauth2/token', 'invalid_client', 2),
    );
    expect(replies[0]!.text).toBe(replies[1]!.text);
    expect(replies[0]!.headers.get('www-authenticate')).toBe(replies[1]!.headers.get('www-authenticate'));
  });
});

describe('admin API key', () => {
  const sameLengthWrong = `${ADMIN_KEY.slice(0, -1)}${ADMIN_KEY.endsWith('x') ? 'y' : 'x'}`;
  it.each([
    ['no Authorization header', undefined],
    ['a wrong key of the same length', `Bearer ${sameLengthWrong}`],
    ['a shorter key', `Bearer ${ADMIN_KEY.slice(0, 8)}`],
    ['a longer key', `Bearer ${ADMIN_KEY}${ADMIN_KEY}`],
    ['the key with a trailing non-ASCII byte', `Bearer ${ADMIN_KEY}\u00e9`],
    ['a wrong basic-auth password', `Basic ${Buffer.from(`admin:${sameLengthWrong}`).toString('base64')}`],
    ['the key under another scheme', `Token ${ADMIN_KEY}`],
    ['an empty Bearer', 'Bearer '],
  ])('%s: 401 with the same body and challenge, and nothing done', async (_what, authorization) => {
    const rotations = await metricValue(sidecar.metrics, 'auth_key_rotation_total');
    for (const [method, path] of [['GET', '/admin/audit'], ['GET', '/admin/keys'], ['POST', '/admin/keys/rotate'], ['POST', '/admin/policies/reload']] as const) {
      const res = await read(await fetch(`${admin}${path}`, { method, headers: authorization === undefined ? {} : { authorization } }));
      expect({ path, status: res.status, body: res.text, www: res.headers.get('www-authenticate') }).toEqual({ path, status: 401, body: '{"error":"unauthorized"}', www: 'Bearer realm="portcullis-admin"' });
    }
    expect(await metricValue(sidecar.metrics, 'auth_key_rotation_total')).toBe(rotations);
  });

  it('accepts the right key (the negative rows above are not vacuous)', async () => {
    expect((await fetch(`${admin}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status).toBe(200);
  });
});

describe('audit filters with SQL metacharacters', () => {
  const audit = async (query: Record<string, string>) => read(await fetch(`${admin}/admin/audit?${new URLSearchParams(query)}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }));
  const sql = ["' OR '1'='1", '1; DROP TABLE audit_events; --', '" OR ""="', "x') UNION SELECT * FROM users --", '%', '_', '\\'];

  // `_` is a valid event-kind character (and a LIKE wildcard, were the value ever interpolated): it is a 200 below.
  const refused = sql.flatMap((s) => [['kind', s], ['since', s], ['until', s], ['limit', s], ['cursor', s]]).filter(([p, v]) => !(p === 'kind' && v === '_'));
  it.each(refused)('%s=%j is a 400 naming the parameter', async (param, value) => {
    const res = await audit({ [param]: value });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('bad_request');
    expect(String(res.json.detail)).toMatch(new RegExp(`^${param}: `));
  });

  it.each([...sql.map((v) => ['user_id', v]), ['kind', '_']])('%s=%j matches nobody (bound as a parameter, never interpolated; user ids through their keyed hash)', async (param, value) => {
    const res = await audit({ [param!]: value! });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ events: [], next_cursor: null });
  });

  it('still has every audit row afterwards', async () => {
    const res = await audit({ limit: '1000' });
    expect(res.status).toBe(200);
    expect((res.json.events as unknown[]).length).toBeGreaterThan(10);
  });
});
