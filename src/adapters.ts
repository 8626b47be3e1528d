import { createMemoryCache, type Cache } from './cache/index.js';
import type { Config } from './config/index.js';
import type { Clock } from './lib/clock.js';
import { openMemoryStore, openSqliteStore, type Store } from './store/index.js';
import type { Logger } from './telemetry/logger.js';

/**
 * The one place that names adapters: the server and the administration commands open their store
 * and cache through these. Drivers with dependencies of their own (pg, ioredis) are loaded only
 * when configured, so every CLI command starts without them.
 */
export async function openStore(config: Readonly<Config>, logger?: Logger): Promise<Store> {
  const s = config.store;
  if (s.driver === 'memory') return openMemoryStore();
  if (s.driver === 'sqlite') return openSqliteStore({ file: s.sqlite_file });
  const { openPostgresStore } = await import('./store/postgres.js');
  return openPostgresStore({
    url: s.url!,
    schema: s.schema,
    poolSize: s.pool_size,
    connectTimeoutMs: s.connect_timeout_ms,
    statementTimeoutMs: s.statement_timeout_ms,
    onIdleError: (err) => logger?.warn({ err }, 'PostgreSQL closed a pooled connection; the pool replaces it'),
  });
}

export async function openCache(config: Readonly<Config>, deps: { logger: Logger; clock: Clock }): Promise<Cache> {
  const c = config.cache;
  if (c.driver === 'memory') return createMemoryCache({ clock: deps.clock, maxEntries: c.max_entries });
  const { createRedisCache } = await import('./cache/redis.js');
  const cache = await createRedisCache({ url: c.url!, keyPrefix: c.key_prefix, commandTimeoutMs: c.command_timeout_ms, connectTimeoutMs: c.connect_timeout_ms, logger: deps.logger });
  deps.logger.info({ key_prefix: c.key_prefix }, 'cache: redis (rate limits, replay cache and fan-out shared across replicas)');
  return cache;
}
