import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore, type PostgresStoreOptions } from '../../src/store/postgres.js';

/**
 * Tests against a real PostgreSQL server (`PORTCULLIS_TEST_PG_URL`, e.g.
 * postgres://postgres@127.0.0.1:5432/test). Each store gets a schema of its own, dropped when the
 * store closes, so test files and tests running in parallel never see each other's rows.
 */
export const PG_URL = process.env.PORTCULLIS_TEST_PG_URL;

/** Says out loud why PostgreSQL tests are skipped. */
export function warnIfNoPostgres(what: string): void {
  if (!PG_URL) console.warn(`PORTCULLIS_TEST_PG_URL is not set: skipping ${what} (export PORTCULLIS_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test to run them)`);
}

export const freshSchema = (): string => `pt_${randomBytes(6).toString('hex')}`;

/** One statement on a short-lived connection of its own (setup, inspection, sabotage). */
export async function pgQuery<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: unknown[] = [], url = PG_URL): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'portcullis-test-admin' });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

export const dropSchema = (schema: string): Promise<unknown> => pgQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);

/** A PostgreSQL store in a fresh schema that is dropped when the store closes. */
export async function openTestPgStore(options: Partial<PostgresStoreOptions> = {}): Promise<Store & { schema: string }> {
  const schema = options.schema ?? freshSchema();
  const store = await openPostgresStore({ url: PG_URL!, poolSize: 4, ...options, schema });
  return {
    ...store,
    schema,
    async close() {
      await store.close();
      await dropSchema(schema);
    },
  };
}

/**
 * For a suite that opens store after store (the contract): one schema for the suite, emptied at
 * each open through one held connection. A new schema per store costs a migration and a drop
 * (most of a second each on a busy machine); emptying a few small tables costs milliseconds.
 * Call `drop` after the suite.
 */
export function reusableTestPgStores(options: Partial<PostgresStoreOptions> = {}): { open(): Promise<Store>; drop(): Promise<void> } {
  const schema = options.schema ?? freshSchema();
  let admin: pg.Client | undefined;
  return {
    async open() {
      if (admin) {
        const tables = await admin.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'", [schema]);
        await admin.query(tables.rows.map((t) => `DELETE FROM "${schema}"."${t.name}";`).join('\n'));
      }
      const store = await openPostgresStore({ url: PG_URL!, poolSize: 4, ...options, schema });
      if (!admin) {
        admin = new pg.Client({ connectionString: PG_URL, application_name: 'portcullis-test-admin' });
        await admin.connect();
      }
      return store;
    },
    async drop() {
      await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin?.end();
    },
  };
}
