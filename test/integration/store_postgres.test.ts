import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isPortcullisError } from '../../src/lib/errors.js';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { auditQuerySql } from '../../src/store/postgres_audit.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres_migrations.js';
import { dropSchema, freshSchema, openTestPgStore, PG_URL, pgQuery, warnIfNoPostgres } from '../helpers/postgres.js';
import { startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp_proxy.js';

const T0 = 1_700_000_000_000;

warnIfNoPostgres('the PostgreSQL store tests');

/** The ERR_STORE* error a promise rejects with (fails when it resolves or throws something else). */
async function storeError(p: Promise<unknown>): Promise<Error & { code: string }> {
  try {
    await p;
  } catch (err) {
    if (isPortcullisError(err, 'ERR_STORE') || isPortcullisError(err, 'ERR_STORE_UNAVAILABLE')) return err;
    throw err;
  }
  throw new Error('expected a store error');
}

const terminate = (appName: string) => pgQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);

describe.skipIf(!PG_URL)('PostgreSQL store: migrations', () => {
  const schemas: string[] = [];
  const fresh = () => {
    const s = freshSchema();
    schemas.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of schemas) await dropSchema(s);
  });

  it('migrates once when several replicas open a fresh schema at the same moment', async () => {
    const schema = fresh();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openPostgresStore({ url: PG_URL!, schema, poolSize: 2 })));
    try {
      expect(new Set(stores.map((s) => s.schemaVersion))).toEqual(new Set([POSTGRES_MIGRATIONS.length]));
      const rows = await pgQuery<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
      expect(rows.map((r) => r.version)).toEqual(POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      // All of them work on the same tables.
      await stores[0]!.revocations.revoke('jti-1', T0);
      expect(await stores[4]!.revocations.isRevoked('jti-1')).toBe(true);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('keeps data and migrates nothing again when reopened', async () => {
    const schema = fresh();
    const first = await openPostgresStore({ url: PG_URL!, schema, poolSize: 2 });
    await first.audit.append({ at: T0, type: 'boot', outcome: 'success', actor: null, clientId: null, ip: null, reason: null, details: { n: 1 } });
    await first.close();
    const applied = await pgQuery<{ applied_at: number }>(`SELECT applied_at FROM "${schema}".schema_migrations`);
    const again = await openPostgresStore({ url: PG_URL!, schema, poolSize: 2 });
    try {
      expect(again.schemaVersion).toBe(POSTGRES_MIGRATIONS.length);
      expect(await again.audit.query({ limit: 5 })).toMatchObject([{ type: 'boot', details: { n: 1 } }]);
      expect(await pgQuery(`SELECT applied_at FROM "${schema}".schema_migrations`)).toEqual(applied);
    } finally {
      await again.close();
    }
  });

  it('refuses a schema newer than this build knows, and leaves it so', async () => {
    const schema = fresh();
    await (await openPostgresStore({ url: PG_URL!, schema, poolSize: 1 })).close();
    await pgQuery(`INSERT INTO "${schema}".schema_migrations (version, applied_at) VALUES (999, 0)`);
    for (let i = 0; i < 2; i++) {
      const err = await storeError(openPostgresStore({ url: PG_URL!, schema, poolSize: 1 }));
      expect(err.code).toBe('ERR_STORE');
      expect(err.message).toMatch(/schema version 999, newer than this build knows/);
    }
    expect((await pgQuery<{ v: number }>(`SELECT max(version) AS v FROM "${schema}".schema_migrations`))[0]!.v).toBe(999);
  });

  it('names the server but never the password when it cannot connect', async () => {
    const err = await storeError(openPostgresStore({ url: 'postgres://portcullis:s3cret-pw@127.0.0.1:1/portcullis', poolSize: 1, connectTimeoutMs: 1_000 }));
    expect(err.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(err.message).toContain('postgres://portcullis:[redacted]@127.0.0.1:1/portcullis');
    expect(err.message).not.toContain('s3cret-pw');
  });

  it('refuses a URL of another scheme and a schema name that is not a plain identifier', async () => {
    await expect(openPostgresStore({ url: 'mysql://u:pw@127.0.0.1/db' })).rejects.toThrow(/must start with postgres:\/\/ or postgresql:\/\//);
    await expect(openPostgresStore({ url: PG_URL!, schema: 'public; DROP TABLE users' })).rejects.toThrow(/must be a lower-case identifier/);
  });
});

describe.skipIf(!PG_URL)('PostgreSQL store: connection loss', () => {
  let proxy: TcpProxy;
  let store: Store;
  let schema: string;
  let appName: string;
  beforeAll(async () => {
    const target = new URL(PG_URL!);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });
  afterAll(() => proxy.close());
  afterEach(async () => {
    proxy.restore();
    await store.close();
    await dropSchema(schema);
  });
  const open = async () => {
    schema = freshSchema();
    appName = `pt-app-${schema}`;
    store = await openPostgresStore({ url: viaProxy(PG_URL!, proxy, { application_name: appName }), schema, poolSize: 2, connectTimeoutMs: 1_000, statementTimeoutMs: 3_000 });
    return store;
  };

  it('fails ping while the server is unreachable and answers again once it is back', async () => {
    await open();
    await store.ping();
    proxy.cut();
    const started = Date.now();
    expect((await storeError(store.ping())).code).toBe('ERR_STORE_UNAVAILABLE');
    expect((await storeError(store.users.list())).code).toBe('ERR_STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(3_000);
    proxy.restore();
    await store.ping();
    expect(await store.users.list()).toEqual([]);
  });

  it('reconnects without an error after the server closed every pooled connection', async () => {
    await open();
    await Promise.all([store.ping(), store.users.list()]);
    const killed = await terminate(appName);
    expect(killed.length).toBeGreaterThan(0);
    await store.ping();
    await store.revocations.revoke('jti-after', T0);
    expect(await store.revocations.isRevoked('jti-after')).toBe(true);
  });

  it('retries a read cut off mid-statement, but surfaces a cut-off write as unavailable without sending it again', async () => {
    await open();
    await store.ping();
    // A transaction elsewhere holds the audit table, so both statements are in flight on the server when their connections die.
    const locker = new pg.Client({ connectionString: PG_URL, application_name: 'portcullis-test-admin' });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema}".audit_events IN ACCESS EXCLUSIVE MODE`);
      const read = store.audit.query({ limit: 10 });
      const write = store.audit.append({ at: T0, type: 'login', outcome: 'success', actor: null, clientId: null, ip: null, reason: null, details: {} });
      const writeOutcome = write.then(
        () => 'applied',
        (err: unknown) => err,
      );
      await waitFor(async () => (await pgQuery(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [appName]))[0]!.n === 2);
      await terminate(appName);
      // The write fails while the lock is still held: it was not sent again (a retry would wait for the lock).
      const err = await writeOutcome;
      expect(isPortcullisError(err, 'ERR_STORE_UNAVAILABLE')).toBe(true);
      await locker.query('COMMIT');
      // The read was sent again and answers once the lock is gone; the write never landed.
      expect(await read).toEqual([]);
      expect(await store.audit.query({ limit: 10 })).toEqual([]);
    } finally {
      await locker.end();
    }
  });
});

describe.skipIf(!PG_URL)('PostgreSQL store: audit queries on indexes', () => {
  let store: Store & { schema: string };
  beforeAll(async () => {
    store = await openTestPgStore({ poolSize: 1 });
    // 20 000 events one second apart, shaped like a real log: mostly logins, some issuance, rare key rotations; 1 000 actors.
    await pgQuery(
      `INSERT INTO "${store.schema}".audit_events (at, type, outcome, actor, client_id, ip, reason, details)
       SELECT ${T0} + i * 1000, CASE WHEN i % 100 = 0 THEN 'key.rotated' WHEN i % 10 = 0 THEN 'token.issued' ELSE 'login.password' END,
              'success', 'hmac:' || (i % 1000), 'app', NULL, NULL, '{}' FROM generate_series(1, 20000) AS i`,
    );
    await pgQuery(`ANALYZE "${store.schema}".audit_events`);
  });
  afterAll(() => store.close());

  const plan = async (q: Parameters<typeof auditQuerySql>[0]) => {
    const { text, values } = auditQuerySql(q);
    const sql = text.replace('FROM audit_events', `FROM "${store.schema}".audit_events`).replace(/\$(\d+)/g, (_m, n: string) => literal(values[Number(n) - 1]));
    const rows = await pgQuery<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  };

  it.each([
    ['type', { limit: 50, type: 'key.rotated' }, 'audit_events_type'],
    ['type, paging back', { limit: 50, type: 'key.rotated', before: 15_000 }, 'audit_events_type'],
    ['actor', { limit: 50, actor: 'hmac:42' }, 'audit_events_actor'],
    ['time range', { limit: 50, since: T0 + 5_000_000, until: T0 + 5_060_000 }, 'audit_events_at'],
  ])('answers a selective %s filter from its index', async (_name, q, index) => {
    expect(await plan(q)).toContain(index);
    const rows = await store.audit.query(q);
    expect(rows.length).toBeGreaterThan(0);
  });
});

function literal(v: unknown): string {
  return typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
