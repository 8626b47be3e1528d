import pg from 'pg';
import { PortcullisError } from '../lib/errors.js';
import { redactUrl } from '../lib/redact_url.js';
import { isConnectionFailure, isUnavailable, retryDelay } from './postgres_errors.js';

export interface PgPoolOptions {
  url: string;
  /** Schema holding the tables (`search_path`); created by the first migration when missing. */
  schema: string;
  poolSize: number;
  /** Bounds getting a connection (queueing for one included) and the whole retry budget of a read. */
  connectTimeoutMs: number;
  /** Server-side `statement_timeout`; the client gives up a second later should the server not answer. */
  statementTimeoutMs: number;
  /** Tries of an idempotent read (the first included) when the connection fails. */
  readAttempts?: number;
  /** Errors of idle pooled connections (the server closed them); the pool already dropped them. */
  onIdleError?: (err: Error) => void;
}

export interface Result<R> {
  rows: R[];
  rowCount: number;
}

/** One statement on a held connection (inside a transaction). */
export type Exec = <R = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<Result<R>>;

/**
 * The PostgreSQL adapter's access to its pool. Reads are idempotent and retried with bounded
 * back-off when the connection fails; writes and transactions are sent once (a retry could apply
 * them twice), and only a failure to get a connection, when nothing was sent, is retried. Every
 * connection-class failure surfaces as ERR_STORE_UNAVAILABLE, anything else as ERR_STORE.
 */
export interface PgDb {
  read<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  write<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Result<R>>;
  tx<T>(fn: (exec: Exec) => Promise<T>): Promise<T>;
  /** Answers when the server does (one quick retry on a pooled connection the server closed). */
  ping(): Promise<void>;
  /** A raw connection for start-up work (migrations), got with the reads' retries; released by the caller. */
  connect(): Promise<pg.PoolClient>;
  close(): Promise<void>;
}

/** BIGINT millisecond times and counts come back as numbers (all well inside 2^53). */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as pg.CustomTypesConfig['getTypeParser'],
};

/** PostgreSQL text cannot hold NUL; such characters (only ever from untrusted input) are stored and compared as U+FFFD. */
const clean = (params: unknown[]): unknown[] => params.map((p) => (typeof p === 'string' && p.includes('\u0000') ? p.replaceAll('\u0000', '\uFFFD') : p));

export function createPgDb(o: PgPoolOptions): PgDb {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize,
    connectionTimeoutMillis: o.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: o.statementTimeoutMs,
    query_timeout: o.statementTimeoutMs + 1_000,
    idle_in_transaction_session_timeout: Math.max(60_000, o.statementTimeoutMs * 4),
    keepAlive: true,
    fallback_application_name: 'portcullis',
    options: `-c search_path=${o.schema}`,
    types,
  });
  // A pooled connection the server closes while idle is dropped by the pool; without a listener it would crash the process.
  pool.on('error', (err) => o.onIdleError?.(err));
  const where = redactUrl(o.url);
  const readAttempts = o.readAttempts ?? 4;

  const fail = (err: unknown): PortcullisError => {
    if (err instanceof PortcullisError) return err;
    const message = `PostgreSQL store ${where}: ${(err as Error).message}`;
    return new PortcullisError(isUnavailable(err) ? 'ERR_STORE_UNAVAILABLE' : 'ERR_STORE', message, { cause: err });
  };

  /** Runs `fn` on a pooled connection; `retryable` says whether a connection failure during `fn` may be retried. */
  async function withClient<T>(fn: (client: pg.PoolClient) => Promise<T>, retryable: boolean, attempts: number): Promise<T> {
    let failedAt: number | undefined;
    for (let attempt = 1; ; attempt++) {
      // After the first connection failure, retries (back-off and reconnecting) get connectTimeoutMs in all.
      const again = async (err: unknown): Promise<boolean> => {
        const delay = retryDelay(attempt);
        failedAt ??= Date.now();
        if (attempt >= attempts || !isConnectionFailure(err) || Date.now() - failedAt + delay > o.connectTimeoutMs) return false;
        await new Promise((resolve) => setTimeout(resolve, delay));
        return true;
      };
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        if (await again(err)) continue;
        throw fail(err);
      }
      // A held connection the server closes emits 'error' besides failing the query: listen while it is ours.
      let broken: Error | undefined;
      const onError = (err: Error) => (broken ??= err);
      client.on('error', onError);
      try {
        const result = await fn(client);
        client.removeListener('error', onError);
        client.release(broken);
        return result;
      } catch (err) {
        client.removeListener('error', onError);
        // A dead connection is destroyed, not returned to the pool.
        client.release(broken ?? (isUnavailable(err) ? (err as Error) : undefined));
        if (retryable && (await again(err))) continue;
        throw fail(err);
      }
    }
  }

  const run = async <R>(client: pg.PoolClient, sql: string, params: unknown[] = []): Promise<Result<R>> => {
    const r = await client.query(sql, clean(params));
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  };

  return {
    read: async <R>(sql: string, params?: unknown[]) => (await withClient((c) => run<R>(c, sql, params), true, readAttempts)).rows,
    write: <R>(sql: string, params?: unknown[]) => withClient((c) => run<R>(c, sql, params), false, readAttempts),
    tx: (fn) =>
      withClient(
        async (client) => {
          await client.query('BEGIN');
          try {
            const result = await fn((sql, params) => run(client, sql, params));
            await client.query('COMMIT');
            return result;
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        },
        false,
        readAttempts,
      ),
    ping: async () => void (await withClient((c) => c.query('SELECT 1'), true, 2)),
    connect: async () => {
      const started = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          return await pool.connect();
        } catch (err) {
          const delay = retryDelay(attempt);
          if (attempt >= readAttempts || !isConnectionFailure(err) || Date.now() - started + delay > o.connectTimeoutMs) throw fail(err);
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    },
    close: async () => {
      if (!pool.ended) await pool.end();
    },
  };
}
