import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PortcullisError } from '../lib/errors.js';
import { SQLITE_MIGRATIONS } from './sqlite_migrations.js';
import { createSqliteIdentityStore } from './sqlite_identities.js';
import { createSqliteUserStore } from './sqlite_users.js';
import { createSqliteClientStore, createSqliteCodeStore, createSqliteRefreshStore } from './sqlite_oauth.js';
import { createSqliteAuditStore, createSqliteChallengeStore, createSqliteKeyStore, createSqliteRevocationStore } from './sqlite_misc.js';
import type { Store } from './store.js';

export type Db = Database.Database;

export interface SqliteStoreOptions {
  /** Database file; `:memory:` for a throw-away store (tests). */
  file: string;
}

/** The default store: one SQLite file in WAL mode, migrated at open. */
export function openSqliteStore({ file }: SqliteStoreOptions): Store {
  let db: Db | undefined;
  let schemaVersion: number;
  let opened: { dev: number; ino: number } | undefined;
  try {
    const created = file !== ':memory:' && !existsSync(file);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    db = new Database(file);
    // Password hashes and encrypted secrets live here: owner-only, like the KEK file.
    if (created) chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    schemaVersion = migrate(db, file);
    if (file !== ':memory:') {
      const { dev, ino } = statSync(file);
      opened = { dev, ino };
    }
  } catch (cause) {
    if (db?.open) db.close();
    if (cause instanceof PortcullisError) throw cause;
    throw new PortcullisError('ERR_STORE', `cannot open SQLite store ${file}: ${(cause as Error).message}`, { cause });
  }
  return {
    users: createSqliteUserStore(db),
    clients: createSqliteClientStore(db),
    codes: createSqliteCodeStore(db),
    refresh: createSqliteRefreshStore(db),
    keys: createSqliteKeyStore(db),
    challenges: createSqliteChallengeStore(db),
    revocations: createSqliteRevocationStore(db),
    audit: createSqliteAuditStore(db),
    identities: createSqliteIdentityStore(db),
    schemaVersion,
    ping: async () => {
      db.prepare('SELECT 1').get();
      if (opened) assertSameFile(file, opened);
    },
    close: () => {
      if (db.open) db.close();
      return Promise.resolve();
    },
  };
}

/**
 * An open SQLite handle keeps working on a file deleted or replaced under it (a volume remounted,
 * a restore copied over it), silently writing where no restart will find it: the ping fails then.
 */
function assertSameFile(file: string, opened: { dev: number; ino: number }): void {
  let now;
  try {
    now = statSync(file);
  } catch (cause) {
    throw new PortcullisError('ERR_STORE', `SQLite store ${file} is no longer on disk: ${(cause as Error).message}`, { cause });
  }
  if (now.ino !== opened.ino || now.dev !== opened.dev) throw new PortcullisError('ERR_STORE', `SQLite store ${file} was replaced on disk after it was opened`);
}

/** A store that lives only as long as the process: an in-memory SQLite database (tests only). */
export function openMemoryStore(): Store {
  return openSqliteStore({ file: ':memory:' });
}

function migrate(db: Db, file: string): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SQLITE_MIGRATIONS.length) {
    throw new PortcullisError('ERR_STORE', `SQLite store ${file} has schema version ${current}, newer than this build knows (${SQLITE_MIGRATIONS.length}); refusing to run an older Portcullis against it`);
  }
  for (let version = current; version < SQLITE_MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(SQLITE_MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
  return SQLITE_MIGRATIONS.length;
}
