import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { BUILTIN_LOGIN_CLIENT } from '../../src/issuer/builtin_client.js';
import { sha256 } from '../../src/issuer/secrets.js';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { createTestUser, type TestUser } from '../helpers/login_flow.js';
import { dropSchema, freshSchema, PG_URL, pgQuery, warnIfNoPostgres } from '../helpers/postgres.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp_proxy.js';

/**
 * PostgreSQL goes away under load. A real sidecar reaches PostgreSQL through a loopback proxy;
 * mid-run the server kills every session of the sidecar (pg_terminate_backend, as a restart does)
 * and stays unreachable for OUTAGE_MS while logins and refresh rotations keep coming. Each worker
 * paces itself (at most one request per PACE_MS) so the load spans the whole run however fast the
 * machine is: unpaced, a fast machine finished its MAX_OPS before the fault. Bounded: at most
 * MAX_OPS requests in at most LOAD_MS.
 */
const WORKERS = 6;
const PACE_MS = 40;
const MAX_OPS = 1_000;
const LOAD_MS = 6_000;
const FAULT_AT_MS = 1_500;
const OUTAGE_MS = 1_500;
const REQUEST_TIMEOUT_MS = 8_000;
const ADMIN_KEY = 'fault-test-admin-key-0123456789';

warnIfNoPostgres('the PostgreSQL outage test');

interface Outcome {
  kind: 'login' | 'refresh';
  status: number;
  error?: string;
  start: number;
  end: number;
}

/** One client's refresh-token family as the client knows it: the last token it was given with a 200. */
interface Chain {
  user: TestUser;
  acknowledged: string;
  rotations: number;
}

describe.skipIf(!PG_URL)('PostgreSQL outage under load', () => {
  let proxy: TcpProxy;
  let sidecar: Sidecar;
  let direct: Store;
  const schema = freshSchema();
  const appName = `pt-fault-${schema}`;

  beforeAll(async () => {
    const target = new URL(PG_URL!);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    sidecar = await startSidecar({
      store: { driver: 'postgres', url: viaProxy(PG_URL!, proxy, { application_name: appName }), schema, pool_size: 4, connect_timeout_ms: 1_000, statement_timeout_ms: 2_000 },
      token_module: { rate_limit: { login_per_minute: 0 } },
      admin: { api_key: ADMIN_KEY },
    });
    // The checker's own view of the database, not through the proxy.
    direct = await openPostgresStore({ url: PG_URL!, schema, poolSize: 2 });
  });
  afterAll(async () => {
    await sidecar?.close();
    await direct?.close();
    await proxy?.close();
    await dropSchema(schema);
  });

  it('loses and duplicates no acknowledged refresh family, answers 503 while PostgreSQL is away, and keeps deciding Checks', { timeout: 60_000 }, async () => {
    const base = `http://127.0.0.1:${sidecar.server.httpPort}`;
    const admin = `http://127.0.0.1:${sidecar.server.adminPort}`;
    const ctx = sidecar.server.tokens!.ctx;
    const users = await Promise.all(Array.from({ length: WORKERS }, () => createTestUser(ctx, { prefix: 'fault', roles: ['viewer'] })));

    const call = async (kind: Outcome['kind'], path: string, init: RequestInit): Promise<{ outcome: Outcome; body: Record<string, unknown> }> => {
      const start = Date.now();
      try {
        const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        const body = (await res.json()) as Record<string, unknown>;
        return { outcome: { kind, status: res.status, error: body.error as string | undefined, start, end: Date.now() }, body };
      } catch (err) {
        return { outcome: { kind, status: 0, error: (err as Error).name, start, end: Date.now() }, body: {} };
      }
    };
    const login = (u: TestUser) => call('login', '/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: u.username, password: u.password }) });
    const refresh = (token: string) =>
      call('refresh', '/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: BUILTIN_LOGIN_CLIENT }).toString() });

    // Before the fault: one access token to check with, and one revoked.
    const kept = await login(users[0]!);
    const revokedLogin = await login(users[1]!);
    expect([kept.outcome.status, revokedLogin.outcome.status]).toEqual([200, 200]);
    const revokeRes = await fetch(`${base}/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: String(revokedLogin.body.access_token), client_id: BUILTIN_LOGIN_CLIENT }).toString() });
    expect(revokeRes.status).toBe(200);
    const check = async (token: string) => {
      const started = Date.now();
      const res = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${token}` }), 2_000);
      const r = res.httpResponse;
      return { decision: r.case === 'okResponse' ? 'allow' : r.case === 'deniedResponse' ? `deny ${r.value.status?.code}` : 'none', ms: Date.now() - started };
    };
    expect((await check(String(kept.body.access_token))).decision).toBe('allow');
    expect((await check(String(revokedLogin.body.access_token))).decision).toBe('deny 401');

    const outcomes: Outcome[] = [];
    const chains: Chain[] = [];
    const started = Date.now();
    let ops = 0;
    const more = () => ops < MAX_OPS && Date.now() - started < LOAD_MS;
    const worker = async (user: TestUser) => {
      let chain: Chain | undefined;
      while (more()) {
        ops++;
        const next = Date.now() + PACE_MS;
        // Mostly rotations; now and then a fresh login (a new family).
        if (!chain || ops % 8 === 0) {
          const r = await login(user);
          outcomes.push(r.outcome);
          if (r.outcome.status === 200) chains.push((chain = { user, acknowledged: String(r.body.refresh_token), rotations: 0 }));
        } else {
          const r = await refresh(chain.acknowledged);
          outcomes.push(r.outcome);
          if (r.outcome.status === 200) {
            chain.acknowledged = String(r.body.refresh_token);
            chain.rotations++;
          }
        }
        const wait = Math.max(next - Date.now(), outcomes.at(-1)!.status !== 200 ? 50 : 0);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    };

    const fault = (async () => {
      await new Promise((resolve) => setTimeout(resolve, FAULT_AT_MS));
      // PostgreSQL "restarts": every session of the sidecar is killed and new ones are refused for a while.
      const faultAt = Date.now();
      proxy.refuse();
      const killed = await pgQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const during = {
        ready: await Promise.all([fetch(`${base}/ready`), fetch(`${admin}/ready`)].map(async (p) => {
          const res = await p;
          return { status: res.status, store: ((await res.json()) as { checks: { store?: boolean } }).checks.store };
        })),
        audit: await fetch(`${admin}/admin/audit?limit=5`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }).then(async (res) => ({ status: res.status, body: await res.json() })),
        keysReload: await sidecar.server.reloadKeys().then(
          () => 'reloaded',
          (err: Error) => err.message,
        ),
        allowed: await check(String(kept.body.access_token)),
        revoked: await check(String(revokedLogin.body.access_token)),
      };
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - faultAt))));
      proxy.restore();
      return { faultAt, restoredAt: Date.now(), killed: killed.length, during };
    })();

    await Promise.all(users.map(worker));
    const f = await fault;

    // While PostgreSQL was away: /ready said so on both listeners, Checks kept deciding from memory,
    // and a failed key reload did not forget the revoked token.
    expect(f.killed).toBeGreaterThan(0);
    // The load ran before, during and after the outage.
    expect(outcomes.some((o) => o.end < f.faultAt)).toBe(true);
    expect(outcomes.some((o) => o.start >= f.faultAt && o.start < f.restoredAt)).toBe(true);
    expect(f.during.ready).toEqual([
      { status: 503, store: false },
      { status: 503, store: false },
    ]);
    expect(f.during.audit).toEqual({ status: 503, body: { error: 'store_unavailable' } });
    expect(f.during.keysReload).toMatch(/PostgreSQL store/);
    expect(f.during.allowed.decision).toBe('allow');
    expect(f.during.revoked.decision).toBe('deny 401');
    expect(Math.max(f.during.allowed.ms, f.during.revoked.ms)).toBeLessThan(1_000);

    // Every failure was a prompt 503 temporarily_unavailable: no 500, no 400 (a lost family would show as invalid_grant), no hang.
    const failed = outcomes.filter((o) => o.status !== 200);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.filter((o) => o.status !== 503 || o.error !== 'temporarily_unavailable')).toEqual([]);
    expect(Math.max(...outcomes.map((o) => o.end - o.start))).toBeLessThan(5_000);
    expect(await metricValue(sidecar.metrics, 'auth_oauth_errors_total', { error: 'temporarily_unavailable' })).toBe(failed.length);
    // Service came back: requests after the restore succeeded.
    expect(outcomes.some((o) => o.start > f.restoredAt && o.status === 200)).toBe(true);

    // Every acknowledged token is the one live token of its family; no family is shared, lost or forked.
    const families = new Set<string>();
    for (const chain of chains) {
      const seen = await direct.refresh.lookup(sha256(chain.acknowledged));
      expect(seen?.token.consumedAt).toBeNull();
      expect(seen?.family.revokedAt).toBeNull();
      families.add(seen!.family.id);
      const live = await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".refresh_tokens WHERE family_id = $1 AND consumed_at IS NULL`, [seen!.family.id]);
      expect(live[0]!.n).toBe(1);
    }
    expect(families.size).toBe(chains.length);
    // And each of them still rotates.
    for (const chain of chains) expect((await refresh(chain.acknowledged)).outcome.status).toBe(200);

    // The error window as clients saw it: from the first 503 answer to the last one.
    const firstError = Math.min(...failed.map((o) => o.end));
    const lastError = Math.max(...failed.map((o) => o.end));
    const recovered = Math.min(...outcomes.filter((o) => o.end > f.restoredAt && o.status === 200).map((o) => o.end));
    console.log(
      `PostgreSQL outage: ${outcomes.length} requests (${outcomes.filter((o) => o.kind === 'login').length} logins, ${outcomes.filter((o) => o.kind === 'refresh').length} refreshes), ` +
        `${failed.length} answered 503; error window ${lastError - firstError} ms (PostgreSQL away ${f.restoredAt - f.faultAt} ms; first 503 ${firstError - f.faultAt} ms after the kill, ` +
        `last 503 ${lastError - f.restoredAt} ms and first 200 ${recovered - f.restoredAt} ms after the restore); ${chains.length} families, ${chains.reduce((n, c) => n + c.rotations, 0)} acknowledged rotations, all intact`,
    );
  });
});
