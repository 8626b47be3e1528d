import { PortcullisError } from '../lib/errors.js';
import { redactUrl } from '../lib/redact_url.js';
import { createPgAuditStore } from './postgres_audit.js';
import { createPgDb, type PgDb } from './postgres_db.js';
import { isConnectionFailure } from './postgres_errors.js';
import { migratePostgres } from './postgres_migrations.js';
import { createPgChallengeStore, createPgKeyStore, createPgRevocationStore } from './postgres_misc.js';
import { createPgClientStore, createPgCodeStore, createPgRefreshStore } from './postgres_oauth.js';
import { createPgUserStore } from './postgres_users.js';
import { createPgIdentityStore } from './postgres_identities.js';
import type { Store } from './store.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database?…` (libpq-style parameters such as `sslmode`, `application_name`). */
  url: string;
  /** Schema holding the tables; created at the first start when missing. */
  schema?: string | undefined;
  poolSize?: number | undefined;
  connectTimeoutMs?: number | undefined;
  statementTimeoutMs?: number | undefined;
  /** Tries of an idempotent read when the connection fails (the first included). */
  readAttempts?: number | undefined;
  /** Pooled connections the server closed while idle (logged by the caller; the pool replaces them). */
  onIdleError?: ((err: Error) => void) | undefined;
}

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Checks a PostgreSQL URL without connecting; the message never shows its password. */
export function checkPostgresUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PortcullisError('ERR_CONFIG_INVALID', 'the PostgreSQL URL is not a valid URL (postgres://user:password@host:5432/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new PortcullisError('ERR_CONFIG_INVALID', `the PostgreSQL URL ${redactUrl(url)} must start with postgres:// or postgresql://`);
  }
}

/** A migrated connection pool (the store's, and `portcullis store migrate`'s target). */
export async function openPostgresDb(o: PostgresStoreOptions): Promise<{ db: PgDb; schemaVersion: number }> {
  checkPostgresUrl(o.url);
  const schema = o.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new PortcullisError('ERR_CONFIG_INVALID', `schema ${JSON.stringify(schema)} must be a lower-case identifier (a-z, 0-9, _)`);
  const statementTimeoutMs = o.statementTimeoutMs ?? 5_000;
  const db = createPgDb({ url: o.url, schema, poolSize: o.poolSize ?? 10, connectTimeoutMs: o.connectTimeoutMs ?? 5_000, statementTimeoutMs, readAttempts: o.readAttempts, onIdleError: o.onIdleError });
  try {
    const client = await db.connect();
    // The connection dying mid-migration also emits 'error' on it: the failed query reports it.
    const ignore = () => undefined;
    client.on('error', ignore);
    try {
      const schemaVersion = await migratePostgres(client, schema, Math.max(60_000, statementTimeoutMs));
      client.removeListener('error', ignore);
      client.release();
      return { db, schemaVersion };
    } catch (err) {
      client.removeListener('error', ignore);
      client.release(isConnectionFailure(err) ? (err as Error) : undefined);
      throw err;
    }
  } catch (cause) {
    await db.close();
    if (cause instanceof PortcullisError) throw cause;
    throw new PortcullisError('ERR_STORE', `cannot open PostgreSQL store ${redactUrl(o.url)}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * The store for several replicas: one PostgreSQL database shared by all, through a pool.
 * Migrates at open (replicas starting together migrate once); a schema newer than this build is
 * refused. Consumption is a single compare-and-set statement, rotation and lockout short
 * transactions, so two replicas never both win.
 */
export async function openPostgresStore(o: PostgresStoreOptions): Promise<Store> {
  const { db, schemaVersion } = await openPostgresDb(o);
  return {
    users: createPgUserStore(db),
    clients: createPgClientStore(db),
    codes: createPgCodeStore(db),
    refresh: createPgRefreshStore(db),
    keys: createPgKeyStore(db),
    challenges: createPgChallengeStore(db),
    revocations: createPgRevocationStore(db),
    audit: createPgAuditStore(db),
    identities: createPgIdentityStore(db),
    schemaVersion,
    ping: () => db.ping(),
    close: () => db.close(),
  };
}
