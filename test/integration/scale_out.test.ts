import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { addUser } from '../../src/issuer/users.js';
import { isPortcullisError } from '../../src/lib/errors.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { closedPort, startTcpProxy } from '../helpers/tcp_proxy.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * Two replicas (A and B) sharing one SQLite file (WAL) and one Redis, as several replicas share
 * PostgreSQL and Redis. Keys and revocations are re-read from the store only every 60 s
 * (`reload_seconds` default), so a change on A reaching B within a second travels by fan-out.
 */

const url = process.env.PORTCULLIS_TEST_REDIS_URL;
if (!url) console.warn('PORTCULLIS_TEST_REDIS_URL is not set: the two-replica (SQLite + Redis) tests are skipped');

const ADMIN_KEY = 'scale-out-admin-key-0123456789';
const PASSWORD = 'correct horse battery staple';
const ISSUER = 'http://portcullis.test';
/** The built CLI (`npm test` builds it). */
const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

/** Polls until `probe` holds, for at most `limitMs`; resolves to the time it took. */
async function within(limitMs: number, probe: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await probe())) {
    if (performance.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
    await sleep(10);
  }
  return performance.now() - start;
}

async function checkStatus(s: Sidecar, token: string): Promise<number> {
  const res = await s.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${token}` }));
  if (res.httpResponse.case === 'okResponse') return 200;
  if (res.httpResponse.case === 'deniedResponse') return res.httpResponse.value.status?.code ?? 403;
  return -1;
}

const base = (s: Sidecar) => `http://127.0.0.1:${s.server.httpPort}`;
/** Each test speaks from its own client address (one trusted proxy hop), so rate-limit windows never mix. */
const from = (ip: string) => ({ 'x-forwarded-for': ip });

async function login(s: Sidecar, ip: string, username: string, password = PASSWORD): Promise<{ status: number; body: Record<string, string>; retryAfter: string | null }> {
  const res = await fetch(`${base(s)}/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...from(ip) }, body: JSON.stringify({ username, password }) });
  return { status: res.status, body: (await res.json()) as Record<string, string>, retryAfter: res.headers.get('retry-after') };
}

async function form(s: Sidecar, path: string, ip: string, fields: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`${base(s)}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(ip) }, body: new URLSearchParams({ client_id: 'portcullis-login', ...fields }).toString() });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe.skipIf(!url)('two replicas sharing SQLite and Redis', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const dir = tempDir('pc-scale-out');
  const sqliteFile = join(dir, 'shared.db');
  const kek = randomBytes(32).toString('base64url');
  const shared: ConfigInput = {
    store: { driver: 'sqlite', sqlite_file: sqliteFile },
    cache: { driver: 'redis', url, key_prefix: prefix },
    http: { trusted_proxy_hops: 1 },
    admin: { api_key: ADMIN_KEY },
    policies: { watch: false },
    token_module: { issuer: ISSUER, kek, rate_limit: { login_per_minute: 4 } },
  };
  let a: Sidecar;
  let b: Sidecar;
  let raw: Redis;

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build (npm test does)`);
    a = await startSidecar(shared);
    b = await startSidecar(shared);
    raw = new Redis(url!);
    await addUser(a.server.tokens!.ctx, { username: 'vic', password: PASSWORD, roles: ['viewer'] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    raw?.disconnect();
  });

  it('agree on the issuer and report the cache on /ready', async () => {
    expect(a.server.issuer).toBe(ISSUER);
    expect(b.server.issuer).toBe(ISSUER);
    for (const s of [a, b]) {
      const ready = await fetch(`${base(s)}/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: Record<string, unknown> }).checks).toMatchObject({ cache: true });
    }
  });

  it('refuses on B, within a second, an access token revoked on A', async () => {
    const { body } = await login(a, '198.51.100.1', 'vic');
    expect(await checkStatus(b, body.access_token!)).toBe(200);
    const revoked = await form(a, '/oauth2/revoke', '198.51.100.1', { token: body.access_token! });
    expect(revoked.status).toBe(200);
    const ms = await within(1_000, async () => (await checkStatus(b, body.access_token!)) === 401);
    expect(ms).toBeLessThan(1_000);
    expect(await checkStatus(a, body.access_token!)).toBe(401);
  });

  it('publishes on B, and trusts on B, within a second, a key rotated on A', async () => {
    const before = await login(a, '198.51.100.2', 'vic');
    const oldKid = decodeProtectedHeader(before.body.access_token!).kid;
    const rotate = await fetch(`http://127.0.0.1:${a.server.adminPort}/admin/keys/rotate?immediate=true`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(rotate.status).toBe(200);
    const { rotated } = (await rotate.json()) as { rotated: string };
    expect(rotated).not.toBe(oldKid);

    const jwksKids = async (s: Sidecar) => ((await (await fetch(`${base(s)}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const ms = await within(1_000, async () => (await jwksKids(b)).includes(rotated));
    expect(ms).toBeLessThan(1_000);
    const after = await login(a, '198.51.100.2', 'vic');
    expect(decodeProtectedHeader(after.body.access_token!).kid).toBe(rotated);
    expect(await checkStatus(b, after.body.access_token!)).toBe(200);
    // B now signs with the new key too.
    const onB = await login(b, '198.51.100.2', 'vic');
    expect(decodeProtectedHeader(onB.body.access_token!).kid).toBe(rotated);
  });

  it('trusts on B, within a second, a key rotated by `portcullis keys rotate` (another process)', async () => {
    const file = join(dir, 'cli.yaml');
    writeFileSync(file, `observability:\n  logging:\n    level: silent\ndev_issuer:\n  enabled: false\nstore:\n  driver: sqlite\n  sqlite_file: ${sqliteFile}\ncache:\n  driver: redis\n  url: ${url}\n  key_prefix: "${prefix}"\ntoken_module:\n  issuer: ${ISSUER}\n  kek: ${kek}\n`);
    const cli = spawnSync(process.execPath, [BIN, 'keys', 'rotate', '--immediate', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
    const { rotated } = JSON.parse(cli.stdout) as { rotated: string };
    const ms = await within(1_000, async () => (await fetch(`${base(b)}/jwks.json`).then((r) => r.json()) as { keys: Array<{ kid: string }> }).keys.some((k) => k.kid === rotated));
    expect(ms).toBeLessThan(1_000);
    const onB = await login(b, '198.51.100.6', 'vic');
    expect(decodeProtectedHeader(onB.body.access_token!).kid).toBe(rotated);
    expect(await checkStatus(a, onB.body.access_token!)).toBe(200);
  });

  it('counts login attempts from one address across both replicas', async () => {
    const ip = '198.51.100.3';
    const answers = [];
    for (const s of [a, b, a, b]) answers.push((await login(s, ip, 'nobody', 'wrong password')).status);
    expect(answers).toEqual([401, 401, 401, 401]);
    const fifth = await login(a, ip, 'nobody', 'wrong password');
    const sixth = await login(b, ip, 'nobody', 'wrong password');
    expect([fifth.status, sixth.status]).toEqual([429, 429]);
    expect(Number(sixth.retryAfter)).toBeGreaterThan(0);
    expect(Number(sixth.retryAfter)).toBeLessThanOrEqual(60);
    expect((await metricValue(a.metrics, 'auth_login_rate_limited_total')) + (await metricValue(b.metrics, 'auth_login_rate_limited_total'))).toBe(2);
    expect(Number(await raw.get(`${prefix}rl:login:${ip}`))).toBe(6);
    // Another address still gets through.
    expect((await login(b, '198.51.100.4', 'vic')).status).toBe(200);
  });

  it('refuses on A a refresh-token family revoked by a reuse detected on B (the family lives in the shared store)', async () => {
    const ip = '198.51.100.5';
    const first = (await login(a, ip, 'vic')).body.refresh_token!;
    const rotated = await form(a, '/oauth2/token', ip, { grant_type: 'refresh_token', refresh_token: first });
    expect(rotated.status).toBe(200);
    const replay = await form(b, '/oauth2/token', ip, { grant_type: 'refresh_token', refresh_token: first });
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await metricValue(b.metrics, 'auth_refresh_token_reuse_total')).toBe(1);
    const next = await form(a, '/oauth2/token', ip, { grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token! });
    expect(next).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });
});

describe('a replica and its cache', () => {
  it('refuses to start with ERR_CACHE when Redis is unreachable, without waiting out the connect timeout', async () => {
    const port = await closedPort();
    const start = performance.now();
    const err = await startSidecar({ cache: { driver: 'redis', url: `redis://:not-logged@127.0.0.1:${port}`, connect_timeout_ms: 60_000 }, policies: { watch: false } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPortcullisError(err, 'ERR_CACHE')).toBe(true);
    expect((err as Error).message).toContain(`cannot connect to Redis at 127.0.0.1:${port}`);
    expect((err as Error).message).not.toContain('not-logged');
    // A refused connection ends the wait at once (the rest is policy loading on a busy machine).
    expect(performance.now() - start).toBeLessThan(20_000);
  });

  it.skipIf(!url)('stays live but not ready while Redis is gone, lets logins through (fail open) and recovers', async () => {
    const target = new URL(url!);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    const s = await startSidecar({ cache: { driver: 'redis', url: proxy.url(), key_prefix: `test:${randomBytes(6).toString('hex')}:` }, policies: { watch: false }, token_module: { rate_limit: { login_per_minute: 1 } } });
    try {
      await addUser(s.server.tokens!.ctx, { username: 'olga', password: PASSWORD, roles: ['viewer'] });
      const readyChecks = async () => {
        const res = await fetch(`${base(s)}/ready`);
        return { status: res.status, cache: ((await res.json()) as { checks: { cache?: boolean } }).checks.cache };
      };
      expect(await readyChecks()).toEqual({ status: 200, cache: true });

      await proxy.stop();
      expect(await readyChecks()).toEqual({ status: 503, cache: false });
      expect((await fetch(`${base(s)}/health`)).status).toBe(200);
      // Over the limit of 1 per minute, yet let through: the limit cannot be counted.
      for (let i = 0; i < 3; i++) expect((await login(s, '198.51.100.9', 'olga')).status).toBe(200);
      expect(await metricValue(s.metrics, 'auth_cache_errors_total', { operation: 'increment' })).toBe(3);
      expect(s.logs.filter((l) => l.msg === 'rate limit cache failed; letting attempts through (fail open)')).toHaveLength(1);

      await proxy.start();
      await within(6_000, async () => (await readyChecks()).status === 200);
      expect((await login(s, '198.51.100.9', 'olga')).status).toBe(200);
      expect((await login(s, '198.51.100.9', 'olga')).status).toBe(429);
    } finally {
      await s.close();
      await proxy.close();
    }
  });
});
