import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/cache/index.js';
import { parseConfig } from '../../src/config/index.js';
import { addClient } from '../../src/issuer/clients.js';
import { passwordLogin } from '../../src/issuer/login_api.js';
import { createTokenModule } from '../../src/issuer/module.js';
import { rotateSigningKey } from '../../src/issuer/key_rotation.js';
import { enrollTotp } from '../../src/issuer/users.js';
import { BUILTIN_LOGIN_CLIENT } from '../../src/issuer/builtin_client.js';
import { systemClock } from '../../src/lib/clock.js';
import { copySqliteToPostgres } from '../../src/store/copy_to_postgres.js';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import { checkPostgresUrl, openPostgresStore } from '../../src/store/postgres.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { createTestUser } from '../helpers/login_flow.js';
import { dropSchema, freshSchema, PG_URL, warnIfNoPostgres } from '../helpers/postgres.js';
import { startSidecar } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });

warnIfNoPostgres('the store migrate command tests');

// Each run spawns the CLI (seconds each on a busy machine).
describe('portcullis store migrate: refusals that need no server', { timeout: 60_000 }, () => {
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build (npm test does)`);
  });

  it('refuses a --from that is not sqlite:<file> and a --to that is not a PostgreSQL URL, with exit code 2', () => {
    const noPrefix = run(['store', 'migrate', '--from', './data/portcullis.db', '--to', 'postgres://u@127.0.0.1/db']);
    expect(noPrefix.status).toBe(2);
    expect(noPrefix.stderr).toContain('--from must be sqlite:<path of the SQLite file>');
    const badTo = run(['store', 'migrate', '--from', 'sqlite:./x.db', '--to', 'mysql://u:hunter22@127.0.0.1/db']);
    expect(badTo.status).toBe(2);
    expect(badTo.stderr).toContain('must start with postgres:// or postgresql://');
    expect(badTo.stderr).not.toContain('hunter22');
    expect(() => checkPostgresUrl('not a url')).toThrow('the PostgreSQL URL is not a valid URL');
  });

  it('refuses a missing SQLite file (creating nothing, exit code 2) and a file that is not a SQLite database', async () => {
    const dir = tempDir('pc-migrate', { 'junk.db': 'not a database '.repeat(300) });
    const missing = join(dir, 'missing.db');
    const r = run(['store', 'migrate', '--from', `sqlite:${missing}`, '--to', 'postgres://u:pw@127.0.0.1:1/db']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`cannot read SQLite store ${missing}: no such file`);
    expect(existsSync(missing)).toBe(false);
    const junk = join(dir, 'junk.db');
    await expect(copySqliteToPostgres({ sqliteFile: junk, target: { url: 'postgres://u:pw@127.0.0.1:1/db' }, force: false })).rejects.toThrow(`cannot open SQLite store ${junk}`);
  });

  it('names an unreachable server without its password, exit code 1', () => {
    const dir = tempDir('pc-migrate');
    const file = join(dir, 'portcullis.db');
    void openSqliteStore({ file }).close();
    const r = run(['store', 'migrate', '--from', `sqlite:${file}`, '--to', 'postgres://portcullis:s3cret-pw@127.0.0.1:1/portcullis']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('postgres://portcullis:[redacted]@127.0.0.1:1/portcullis');
    expect(r.stderr).not.toContain('s3cret-pw');
  });

  it('shows store.url with its password redacted in config check, like the other secrets', () => {
    const dir = tempDir('pc-migrate', { 'c.yaml': 'store:\n  driver: postgres\n' });
    const r = run(['config', 'check', '--config', join(dir, 'c.yaml')], { PORTCULLIS_STORE_URL: 'postgres://app:pg-pa55word@db.internal:5432/auth?sslmode=require', PORTCULLIS_KEK: randomBytes(32).toString('base64url') });
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout) as { store: { url: string }; token_module: { kek: string } };
    expect(printed.store.url).toBe('postgres://app:[redacted]@db.internal:5432/auth?sslmode=require');
    expect(printed.token_module.kek).toBe('[redacted]');
    expect(r.stdout).not.toContain('pg-pa55word');
  });

  it('refuses store.driver postgres without a URL, and a URL of another scheme without echoing it', () => {
    expect(() => parseConfig({ store: { driver: 'postgres' } })).toThrow('store.url: is required with store.driver: postgres');
    let message = '';
    try {
      parseConfig({ store: { driver: 'postgres', url: 'mysql://u:pw-secret@h/db' } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('store.url: must be a postgres:// or postgresql:// URL');
    expect(message).not.toContain('pw-secret');
  });
});

describe.skipIf(!PG_URL)('portcullis store migrate: SQLite to PostgreSQL', () => {
  const kek = randomBytes(32).toString('base64url');
  const schema = freshSchema();
  let dir: string;
  let file: string;
  let alice: { username: string; password: string };
  let bob: { username: string; password: string; backupCodes: string[] };
  let refreshToken: string;

  beforeAll(async () => {
    dir = tempDir('pc-migrate');
    file = join(dir, 'portcullis.db');
    // A SQLite store with a bit of everything, filled through the token module and the Store port.
    const config = parseConfig({ dev_issuer: { enabled: false }, store: { driver: 'sqlite', sqlite_file: file }, token_module: { kek } });
    const store = openSqliteStore({ file });
    try {
      const tokens = await createTokenModule({ config, store, cache: createMemoryCache(), clock: systemClock, metrics: createMetrics(), logger: createLogger('silent') });
      tokens.setIssuer('http://127.0.0.1:9000');
      const ctx = tokens.ctx;
      const a = await createTestUser(ctx, { prefix: 'alice', roles: ['viewer'], name: 'Alice' });
      const b = await createTestUser(ctx, { prefix: 'bob', roles: ['editor'] });
      bob = { ...b, backupCodes: (await enrollTotp(ctx, b.username, 'Portcullis')).backupCodes };
      alice = a;
      await addClient(ctx, { clientId: 'reports', type: 'confidential', grantTypes: ['client_credentials'], redirectUris: [], scopes: ['read'], roles: ['service'], firstParty: false });
      const login = await passwordLogin(ctx, tokens.limiter, { username: a.username, password: a.password }, '203.0.113.7');
      if (!('refresh_token' in login)) throw new Error('expected tokens');
      refreshToken = login.refresh_token!;
      await ctx.revoked.revoke('jti-revoked', Date.now() + 3_600_000);
      await rotateSigningKey(ctx, 'cli');
      await store.codes.save({ codeHash: 'code-1', clientId: 'web', userId: a.user.id, redirectUri: 'https://app.example/cb', scope: 'openid', codeChallenge: 'c', nonce: null, resource: null, amr: ['pwd'], authTime: 1, expiresAt: Date.now() + 60_000, consumedAt: null, familyId: null, accessTokenJti: null });
      await store.challenges.save({ idHash: 'ch-1', kind: 'interaction', userId: null, data: { state: 'a\u0000b', nested: { n: 1 } }, expiresAt: Date.now() + 60_000, consumedAt: null });
      await store.challenges.useOnce('client_assertion:reports:jti-1', Date.now() + 60_000);
    } finally {
      await store.close();
    }
  });
  afterAll(() => dropSchema(schema));

  it('copies every table into an empty schema, reads back the same through the PostgreSQL store, and lets users log in there', { timeout: 90_000 }, async () => {
    const r = run(['store', 'migrate', '--from', `sqlite:${file}`, '--to', PG_URL!, '--schema', schema]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { tables: Record<string, number>; rows: number; schema: string };
    expect(out.schema).toBe(schema);
    expect(out.tables).toMatchObject({ users: 2, password_credentials: 2, totp_enrolments: 1, backup_codes: 10, clients: 2, authorization_codes: 1, refresh_families: 1, refresh_tokens: 1, signing_keys: 2, challenges: 1, used_once: 1, revoked_tokens: 1 });
    expect(out.tables.audit_events).toBeGreaterThan(3);
    expect(Object.keys(out.tables).indexOf('users')).toBeLessThan(Object.keys(out.tables).indexOf('password_credentials'));

    const sqlite = openSqliteStore({ file });
    const pg = await openPostgresStore({ url: PG_URL!, schema, poolSize: 2 });
    try {
      await expectSameContents(sqlite, pg, refreshToken);
    } finally {
      await sqlite.close();
      await pg.close();
    }

    // The migrated store serves: password login, MFA with a migrated backup code (keyed by the same KEK), a refresh token issued before.
    const sidecar = await startSidecar({ store: { driver: 'postgres', url: PG_URL!, schema, pool_size: 2 }, token_module: { kek } });
    try {
      const base = `http://127.0.0.1:${sidecar.server.httpPort}`;
      const post = (path: string, body: Record<string, string>) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const aliceLogin = await post('/login', { username: alice.username, password: alice.password });
      expect(aliceLogin.status).toBe(200);
      expect(await aliceLogin.json()).toMatchObject({ token_type: 'Bearer', refresh_token: expect.any(String) });
      const bobFirst = (await (await post('/login', { username: bob.username, password: bob.password })).json()) as { mfa_token: string };
      const bobDone = await post('/login/mfa', { mfa_token: bobFirst.mfa_token, code: bob.backupCodes[0]! });
      expect(bobDone.status).toBe(200);
      const refreshed = await fetch(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: BUILTIN_LOGIN_CLIENT }).toString() });
      expect(refreshed.status).toBe(200);
      // New audit rows continue after the migrated ones.
      const events = await sidecar.server.tokens!.ctx.store.audit.query({ limit: 1 });
      expect(events[0]!.id).toBeGreaterThan(out.tables.audit_events!);
    } finally {
      await sidecar.close();
    }

    // The CLI administration commands work against PostgreSQL too.
    const cfg = join(dir, 'pg.yaml');
    writeFileSync(cfg, `store:\n  driver: postgres\n  schema: ${schema}\ntoken_module:\n  kek: ${kek}\ndev_issuer:\n  enabled: false\n`);
    const users = run(['users', 'list', '--config', cfg], { PORTCULLIS_STORE_URL: PG_URL! });
    expect(users.status).toBe(0);
    expect(users.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { username: string }).username).sort()).toEqual([alice.username, bob.username].sort());
  });

  it('refuses a target that already holds data, and replaces it with --force', { timeout: 60_000 }, async () => {
    const again = run(['store', 'migrate', '--from', `sqlite:${file}`, '--to', PG_URL!, '--schema', schema]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/the target already holds data \(.*users.*\); refusing to mix stores \(--force empties it first\)/);
    const forced = run(['store', 'migrate', '--from', `sqlite:${file}`, '--to', PG_URL!, '--schema', schema, '--force']);
    expect(forced.status).toBe(0);
    const sqlite = openSqliteStore({ file });
    const pg = await openPostgresStore({ url: PG_URL!, schema, poolSize: 2 });
    try {
      // The logins of the previous test went to PostgreSQL only; --force brought it back to the SQLite contents exactly.
      await expectSameContents(sqlite, pg, refreshToken);
    } finally {
      await sqlite.close();
      await pg.close();
    }
  });
});

async function expectSameContents(a: Store, b: Store, refreshToken: string): Promise<void> {
  const { sha256 } = await import('../../src/issuer/secrets.js');
  expect(await b.users.list()).toEqual(await a.users.list());
  for (const u of await a.users.list()) {
    expect(await b.users.passwordHash(u.id)).toBe(await a.users.passwordHash(u.id));
    expect(await b.users.totp(u.id)).toEqual(await a.users.totp(u.id));
  }
  expect(await b.clients.list()).toEqual(await a.clients.list());
  expect(await b.keys.list()).toEqual(await a.keys.list());
  expect(await b.audit.query({ limit: 1_000 })).toEqual(await a.audit.query({ limit: 1_000 }));
  expect(await b.refresh.lookup(sha256(refreshToken))).toEqual(await a.refresh.lookup(sha256(refreshToken)));
  expect(await b.codes.lookup('code-1')).toEqual(await a.codes.lookup('code-1'));
  expect(await b.challenges.get('ch-1')).toEqual(await a.challenges.get('ch-1'));
  expect((await b.revocations.active(0)).sort()).toEqual((await a.revocations.active(0)).sort());
  expect(await b.challenges.useOnce('client_assertion:reports:jti-1', Date.now() + 60_000)).toBe(false);
}
