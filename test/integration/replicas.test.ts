import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTokenModule } from '../../src/cli/token_module.js';
import { createCheckClient, httpCheckRequest, type CheckClient } from '../../src/extauthz/client.js';
import { addClient } from '../../src/issuer/clients.js';
import { addUser } from '../../src/issuer/users.js';
import { spawnServer, type ServerProcess } from '../helpers/cli_server.js';
import { seen } from '../helpers/corpus.js';
import { makeDpopKey } from '../helpers/dpop.js';
import { dropSchema, freshSchema } from '../helpers/postgres.js';
import { scrape } from '../helpers/prom_text.js';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { deleteRedisKeys } from '../helpers/redis.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * Two real `portcullis serve` processes (replicas A and B, the built CLI) on one PostgreSQL schema
 * and one Redis key prefix, as a scaled-out deployment runs them. Every assertion goes over their
 * real listeners: HTTP for the token module and `/metrics`, gRPC for Envoy's Check.
 */

const PG_URL = process.env.PORTCULLIS_TEST_PG_URL;
const REDIS_URL = process.env.PORTCULLIS_TEST_REDIS_URL;
const missing = [PG_URL ? '' : 'PORTCULLIS_TEST_PG_URL', REDIS_URL ? '' : 'PORTCULLIS_TEST_REDIS_URL'].filter(Boolean);
if (missing.length) console.warn(`${missing.join(' and ')} not set: the two-process replica tests (one PostgreSQL, one Redis) are skipped`);

const ISSUER = 'http://auth.replicas.test';
const ADMIN_KEY = 'replicas-admin-key-0123456789';
const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 3;
const LOGINS_PER_MINUTE = 4;
const HOST = 'api.example.com';
const DOC_URL = `http://${HOST}/documents/d1`;
const ALGS = 'ES256 ES384 EdDSA Ed25519 PS256 RS256';

interface Replica {
  name: string;
  proc: ServerProcess;
  check: CheckClient;
  http: string;
}

/** Polls until `probe` holds, for at most `limitMs`; resolves to the time it took. */
async function within(limitMs: number, probe: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await probe())) {
    if (performance.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
    await sleep(10);
  }
  return performance.now() - start;
}

/** Each test speaks from client addresses of its own (one trusted proxy hop), so rate-limit windows never mix. */
let ipCounter = 0;
const nextIp = () => `203.0.113.${++ipCounter}`;

async function login(r: Replica, ip: string, username: string, password = PASSWORD) {
  const res = await fetch(`${r.http}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify({ username, password }) });
  return { status: res.status, body: (await res.json()) as Record<string, string>, retryAfter: res.headers.get('retry-after') };
}

async function form(r: Replica, path: string, ip: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${r.http}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip, ...headers }, body: new URLSearchParams(fields).toString() });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

const refresh = (r: Replica, ip: string, token: string) => form(r, '/oauth2/token', ip, { grant_type: 'refresh_token', client_id: 'portcullis-login', refresh_token: token });

async function check(r: Replica, authorization: string, proof?: string) {
  return seen(await r.check.check(httpCheckRequest('GET', '/documents/d1', { authorization, ...(proof ? { dpop: proof } : {}) }, { host: HOST })));
}

const metric = (r: Replica, name: string, labels: Record<string, string> = {}) => scrape(r.proc.admin, name, labels);
const both = async (name: string, labels: Record<string, string> = {}) => (await metric(a, name, labels)) + (await metric(b, name, labels));

let a: Replica;
let b: Replica;
let svcSecret = '';
const schema = freshSchema();
const prefix = `test:${randomBytes(6).toString('hex')}:`;

describe.skipIf(missing.length > 0)('two portcullis serve processes on one PostgreSQL and one Redis', () => {
  beforeAll(async () => {
    const dir = tempDir('pc-replicas');
    const file = join(dir, 'replica.yaml');
    // JSON is YAML: one file for both processes (port 0: each binds its own loopback ports).
    const config = {
      dev_issuer: { enabled: false },
      observability: { logging: { level: 'info' } },
      grpc: { address: '127.0.0.1:0', warmup_checks: 10 },
      http: { address: '127.0.0.1:0', trusted_proxy_hops: 1 },
      admin: { address: '127.0.0.1:0', api_key: ADMIN_KEY },
      policies: { dir: EXAMPLE_POLICIES, watch: false },
      store: { driver: 'postgres', url: PG_URL, schema, pool_size: 4 },
      cache: { driver: 'redis', url: REDIS_URL, key_prefix: prefix },
      token_module: { issuer: ISSUER, kek: randomBytes(32).toString('base64url'), lockout: { max_failures: MAX_FAILURES, base_seconds: 60, max_seconds: 600 }, rate_limit: { login_per_minute: LOGINS_PER_MINUTE } },
      lifecycle: { drain_seconds: 0, shutdown_timeout_seconds: 2 },
    };
    writeFileSync(file, JSON.stringify(config));
    // What an operator does first, with the same library code as `portcullis users add` / `clients add`.
    await withTokenModule(file, async ({ ctx }) => {
      for (const username of ['vic', 'lou']) await addUser(ctx, { username, password: PASSWORD, roles: ['viewer'] });
      svcSecret = (await addClient(ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'], redirectUris: [], firstParty: false })).secret!;
    });
    const [pa, pb] = await Promise.all([spawnServer(file), spawnServer(file)]);
    a = { name: 'A', proc: pa, check: createCheckClient(pa.grpc), http: `http://${pa.http}` };
    b = { name: 'B', proc: pb, check: createCheckClient(pb.grpc), http: `http://${pb.http}` };
  }, 60_000);

  afterAll(async () => {
    for (const r of [a, b]) {
      if (!r) continue;
      r.check.close();
      r.proc.child.kill('SIGTERM');
    }
    await Promise.all([a, b].filter(Boolean).map((r) => Promise.race([r.proc.exited, sleep(5_000).then(() => r.proc.kill())])));
    await dropSchema(schema);
    await deleteRedisKeys(REDIS_URL!, prefix);
  }, 20_000);

  it('are two processes with their own listeners, both ready', async () => {
    expect(a.proc.child.pid).not.toBe(b.proc.child.pid);
    expect(new Set([a.proc.grpc, b.proc.grpc, a.proc.http, b.proc.http, a.proc.admin, b.proc.admin]).size).toBe(6);
    for (const r of [a, b]) {
      const ready = await fetch(`${r.http}/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: Record<string, unknown> }).checks).toMatchObject({ cache: true });
    }
  });

  it('a refresh token used on A and replayed on B: invalid_grant, and the whole family is revoked', async () => {
    const ip = nextIp();
    const first = (await login(a, ip, 'vic')).body.refresh_token!;
    const rotated = await refresh(a, ip, first);
    expect(rotated.status).toBe(200);
    const reuseOnB = await metric(b, 'auth_refresh_token_reuse_total');
    expect(await refresh(b, ip, first)).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: expect.any(String) } });
    expect(await metric(b, 'auth_refresh_token_reuse_total')).toBe(reuseOnB + 1);
    // The newest token of the family, never used, is refused on either replica.
    expect(await refresh(a, ip, rotated.body.refresh_token!)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await refresh(b, ip, rotated.body.refresh_token!)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('concurrent refreshes of one token split across A and B: exactly one succeeds', async () => {
    const N = 8;
    const ip = nextIp();
    const token = (await login(b, ip, 'vic')).body.refresh_token!;
    const reuseBefore = await both('auth_refresh_token_reuse_total');
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => refresh(i % 2 === 0 ? a : b, ip, token)));
    const winners = answers.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(N - 1);
    // The losers presented a spent token: a reuse, which revokes the family, the winner's successor included.
    expect(await both('auth_refresh_token_reuse_total')).toBeGreaterThanOrEqual(reuseBefore + 1);
    expect(await refresh(a, ip, winners[0]!.body.refresh_token!)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('a DPoP proof accepted in a Check on A is refused as a replay in a Check on B, and B counts it', async () => {
    const key = await makeDpopKey();
    const issued = await form(a, '/oauth2/token', nextIp(), { grant_type: 'client_credentials', scope: 'documents' }, { authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}`, dpop: await key.proof('POST', `${ISSUER}/oauth2/token`) });
    expect(issued).toMatchObject({ status: 200, body: { token_type: 'DPoP' } });
    const token = issued.body.access_token!;
    const proof = await key.proof('GET', DOC_URL, { accessToken: token });
    expect((await check(a, `DPoP ${token}`, proof)).status).toBe(200);
    const replaysOnB = await metric(b, 'auth_dpop_proofs_rejected_total', { reason: 'replay' });
    const replayed = await check(b, `DPoP ${token}`, proof);
    expect({ status: replayed.status, wwwAuthenticate: replayed.wwwAuthenticate }).toEqual({ status: 401, wwwAuthenticate: `DPoP algs="${ALGS}", error="invalid_dpop_proof", error_description="invalid DPoP proof"` });
    expect(await metric(b, 'auth_dpop_proofs_rejected_total', { reason: 'replay' })).toBe(replaysOnB + 1);
    // A fresh proof of the same key is accepted on B: only the replay was refused.
    expect((await check(b, `DPoP ${token}`, await key.proof('GET', DOC_URL, { accessToken: token }))).status).toBe(200);
  });

  it("a key rotated through A's admin API is in B's JWKS, and B's Check accepts tokens signed with it, within a second", async () => {
    const ip = nextIp();
    const oldKid = decodeProtectedHeader((await login(a, ip, 'vic')).body.access_token!).kid;
    const rotate = await fetch(`http://${a.proc.admin}/admin/keys/rotate?immediate=true`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(rotate.status).toBe(200);
    const { rotated } = (await rotate.json()) as { rotated: string };
    expect(rotated).not.toBe(oldKid);
    const signed = (await login(a, ip, 'vic')).body.access_token!;
    expect(decodeProtectedHeader(signed).kid).toBe(rotated);
    const jwksKids = async (r: Replica) => ((await (await fetch(`${r.http}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const ms = await within(1_000, async () => (await jwksKids(b)).includes(rotated) && (await check(b, `Bearer ${signed}`)).status === 200);
    expect(ms).toBeLessThan(1_000);
    // B signs with it too (its signer moved, not only its trust).
    expect(decodeProtectedHeader((await login(b, ip, 'vic')).body.access_token!).kid).toBe(rotated);
  });

  it("an access token revoked on A is refused by B's Check within a second", async () => {
    const ip = nextIp();
    const token = (await login(a, ip, 'vic')).body.access_token!;
    expect((await check(b, `Bearer ${token}`)).status).toBe(200);
    expect((await form(a, '/oauth2/revoke', ip, { client_id: 'portcullis-login', token })).status).toBe(200);
    const ms = await within(1_000, async () => (await check(b, `Bearer ${token}`)).status === 401);
    expect(ms).toBeLessThan(1_000);
    expect((await check(b, `Bearer ${token}`)).wwwAuthenticate).toMatch(/^Bearer realm="portcullis", error="invalid_token"/);
  });

  it(`failed logins alternated across A and B lock the account after lockout.max_failures (${MAX_FAILURES}) in total`, async () => {
    const locksBefore = await both('auth_login_lockouts_total');
    const lockedOnB = await metric(b, 'auth_login_failures_total', { method: 'password', reason: 'account_locked' });
    // A, B, A: neither replica alone saw three failures.
    for (const r of [a, b, a]) expect((await login(r, nextIp(), 'lou', 'wrong password')).status).toBe(401);
    expect(await both('auth_login_lockouts_total')).toBe(locksBefore + 1);
    const right = await login(b, nextIp(), 'lou');
    expect(right).toMatchObject({ status: 401, body: { error: 'invalid_credentials' } });
    expect(await metric(b, 'auth_login_failures_total', { method: 'password', reason: 'account_locked' })).toBe(lockedOnB + 1);
    expect((await login(a, nextIp(), 'lou')).status).toBe(401);
  });

  it(`counts the per-IP login rate limit (${LOGINS_PER_MINUTE} a minute) across both replicas`, async () => {
    const ip = nextIp();
    const limitedBefore = await both('auth_login_rate_limited_total');
    const answers = [];
    for (const r of [a, b, a, b]) answers.push((await login(r, ip, 'nobody', 'wrong password')).status);
    expect(answers).toEqual([401, 401, 401, 401]);
    const fifth = await login(b, ip, 'vic');
    const sixth = await login(a, ip, 'vic');
    expect([fifth.status, sixth.status]).toEqual([429, 429]);
    expect(Number(fifth.retryAfter)).toBeGreaterThan(0);
    expect(Number(fifth.retryAfter)).toBeLessThanOrEqual(60);
    expect(await both('auth_login_rate_limited_total')).toBe(limitedBefore + 2);
    // Another address still gets through on either replica.
    expect((await login(b, nextIp(), 'vic')).status).toBe(200);
  });
});
