import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isPortcullisError } from '../../src/lib/errors.js';
import { openMemoryStore, openSqliteStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/temp_dir.js';
import { PG_URL, reusableTestPgStores, warnIfNoPostgres } from '../helpers/postgres.js';
import { describeStoreContract } from './store_contract.js';

const T0 = 1_700_000_000_000;

const freshFile = (): string => join(tempDir('portcullis-store'), 'portcullis.db');

describeStoreContract('SQLite file', () => openSqliteStore({ file: freshFile() }));
describeStoreContract('in-memory', () => openMemoryStore());
warnIfNoPostgres('the PostgreSQL store contract');
describe.skipIf(!PG_URL)('PostgreSQL (one schema, emptied at each open)', () => {
  const stores = reusableTestPgStores();
  afterAll(() => stores.drop());
  describeStoreContract('PostgreSQL', () => stores.open());
});

/** The ERR_STORE error `open` throws, or a failure when it throws something else or nothing. */
function storeError(open: () => Store): Error {
  try {
    void open().close();
  } catch (err) {
    if (isPortcullisError(err, 'ERR_STORE')) return err;
    throw err;
  }
  throw new Error('expected ERR_STORE');
}

describe('SQLite file store', () => {
  const opened: Store[] = [];
  const open = (file: string): Store => {
    const store = openSqliteStore({ file });
    opened.push(store);
    return store;
  };
  const close = async (store: Store): Promise<void> => {
    opened.splice(opened.indexOf(store), 1);
    await store.close();
  };
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it('keeps its data across close and reopen', async () => {
    const file = freshFile();
    const first = open(file);
    await first.users.create({ id: 'u-alice', username: 'alice', roles: ['admin'], passwordHash: 'hash-a', createdAt: T0 });
    await first.users.setTotp({ userId: 'u-alice', secretCiphertext: 'enc', createdAt: T0, lastStep: null }, ['backup-1']);
    await first.users.advanceTotpStep('u-alice', 10);
    await first.clients.create({
      clientId: 'app',
      name: 'App',
      type: 'public',
      authMethod: 'none',
      secretHash: null,
      jwks: null,
      grantTypes: ['authorization_code'],
      redirectUris: ['https://app.example/cb'],
      scopes: ['openid'],
      roles: [],
      firstParty: true,
      createdAt: T0,
    });
    await first.codes.save({
      codeHash: 'code-1',
      clientId: 'app',
      userId: 'u-alice',
      redirectUri: 'https://app.example/cb',
      scope: 'openid',
      codeChallenge: 'challenge',
      nonce: null,
      resource: null,
      amr: ['pwd'],
      authTime: T0,
      expiresAt: T0 + 60_000,
      consumedAt: null,
      familyId: null,
      accessTokenJti: null,
    });
    await first.codes.consume('code-1', T0 + 1_000);
    await first.keys.insert({ kid: 'k1', alg: 'ES256', publicJwk: { kty: 'EC', kid: 'k1' }, privateCiphertext: 'enc-k1', createdAt: T0, activatesAt: T0, retiresAt: null });
    await first.revocations.revoke('jti-1', T0 + 3_600_000);
    await first.audit.append({ at: T0, type: 'login', outcome: 'success', actor: 'hmac:1', clientId: 'app', ip: null, reason: null, details: { mfa: true } });
    await close(first);

    const again = open(file);
    expect(await again.users.byUsername('alice')).toMatchObject({ id: 'u-alice', roles: ['admin'] });
    expect(await again.users.passwordHash('u-alice')).toBe('hash-a');
    expect(await again.users.advanceTotpStep('u-alice', 10)).toBe(false);
    expect(await again.users.consumeBackupCode('u-alice', 'backup-1', T0)).toBe(true);
    expect((await again.clients.byId('app'))?.firstParty).toBe(true);
    expect(await again.codes.consume('code-1', T0 + 2_000)).toMatchObject({ status: 'replayed', record: { consumedAt: T0 + 1_000 } });
    expect((await again.keys.list()).map((k) => k.kid)).toEqual(['k1']);
    expect(await again.revocations.isRevoked('jti-1')).toBe(true);
    expect(await again.audit.query({ limit: 10 })).toMatchObject([{ type: 'login', details: { mfa: true } }]);
  });

  it('reports its schema version and opens an already-migrated file at the same version', async () => {
    const file = freshFile();
    const first = open(file);
    expect(first.schemaVersion).toBeGreaterThanOrEqual(1);
    const version = first.schemaVersion;
    await close(first);
    const again = open(file);
    expect(again.schemaVersion).toBe(version);
    await again.audit.append({ at: T0, type: 'boot', outcome: 'success', actor: null, clientId: null, ip: null, reason: null, details: {} });
    expect(await again.audit.query({ limit: 1 })).toHaveLength(1);
  });

  it('creates the folder of the database file', async () => {
    const store = open(join(tempDir('portcullis-store'), 'nested', 'deeper', 'portcullis.db'));
    expect(await store.users.list()).toEqual([]);
  });

  it('sees what another store on the same file consumed', async () => {
    const file = freshFile();
    const a = open(file);
    const b = open(file);
    await a.challenges.save({ idHash: 'ch-1', kind: 'mfa', userId: 'u-alice', data: {}, expiresAt: T0 + 60_000, consumedAt: null });
    expect((await b.challenges.consume('ch-1', T0)).status).toBe('ok');
    expect((await a.challenges.consume('ch-1', T0)).status).toBe('replayed');
    expect(await a.challenges.useOnce('jti-1', T0 + 60_000)).toBe(true);
    expect(await b.challenges.useOnce('jti-1', T0 + 60_000)).toBe(false);
  });

  it('refuses a file whose schema is newer than this build knows, and leaves it so', () => {
    const file = freshFile();
    const db = new Database(file);
    db.pragma('user_version = 999');
    db.close();
    expect(storeError(() => openSqliteStore({ file })).message).toMatch(/schema version 999/);
    // Refusing did not migrate or downgrade it: a second attempt is refused the same way.
    expect(storeError(() => openSqliteStore({ file })).message).toMatch(/schema version 999/);
  });

  it('refuses a file that is not a SQLite database', () => {
    const file = join(tempDir('portcullis-store', { 'portcullis.db': 'not a database '.repeat(300) }), 'portcullis.db');
    expect(storeError(() => openSqliteStore({ file })).message).toContain(file);
  });
});

describe('in-memory store', () => {
  it('gives every store its own empty database', async () => {
    const a = openMemoryStore();
    const b = openMemoryStore();
    try {
      await a.revocations.revoke('jti-1', T0);
      expect(await b.revocations.isRevoked('jti-1')).toBe(false);
      expect(a.schemaVersion).toBe(b.schemaVersion);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
