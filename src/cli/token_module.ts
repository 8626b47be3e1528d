import { createMemoryCache, type Cache } from '../cache/index.js';
import type { Config } from '../config/index.js';
import { loadConfig } from '../config/index.js';
import { createTokenModule, type TokenModule } from '../issuer/module.js';
import { systemClock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import { openCache, openStore } from '../adapters.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';

/**
 * Runs an administration command (logs go to stderr: stdout carries only the command's result)
 * against the token module's store: the same SQLite file or PostgreSQL database the server uses.
 * With `cache.driver: redis`, running servers hear of a key rotation or revocation at once;
 * otherwise (or when Redis is unreachable) they see it on SIGHUP or their reload timer.
 */
export async function withTokenModule<T>(configFile: string | undefined, fn: (tokens: TokenModule, config: Readonly<Config>) => Promise<T>): Promise<T> {
  const config = loadConfig({ file: configFile });
  if (config.store.driver === 'memory') throw new PortcullisError('ERR_CONFIG_INVALID', 'store.driver memory keeps nothing between processes; administration commands need the sqlite or postgres store');
  const logger = createLogger(config.observability.logging.level === 'silent' ? 'silent' : 'warn', process.stderr);
  const store = await openStore(config, logger);
  const cache = await cliCache(config, logger);
  try {
    const tokens = await createTokenModule({ config, store, cache, clock: systemClock, metrics: createMetrics(), logger });
    tokens.setIssuer(config.token_module.issuer ?? `http://${config.http.address}`);
    return await fn(tokens, config);
  } finally {
    await cache.close();
    await store.close();
  }
}

/** An administration command still works without Redis: running servers then catch up on their reload timer. */
async function cliCache(config: Readonly<Config>, logger: Logger): Promise<Cache> {
  try {
    return await openCache(config, { logger, clock: systemClock });
  } catch (err) {
    logger.warn({ err }, 'cache unreachable: running servers will see this change on SIGHUP or their reload timer, not at once');
    return createMemoryCache();
  }
}
