import type { Config } from '../config/index.js';
import { loadConfig } from '../config/index.js';
import { createTokenModule, type TokenModule } from '../issuer/module.js';
import { systemClock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import { openSqliteStore } from '../store/index.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';

/**
 * Runs an administration command (logs go to stderr: stdout carries only the command's result) against the token module's store (the same SQLite file the
 * server uses; a running server sees key changes on SIGHUP or its reload timer).
 */
export async function withTokenModule<T>(configFile: string | undefined, fn: (tokens: TokenModule, config: Readonly<Config>) => Promise<T>): Promise<T> {
  const config = loadConfig({ file: configFile });
  if (config.store.driver !== 'sqlite') throw new PortcullisError('ERR_CONFIG_INVALID', `store.driver ${config.store.driver} keeps nothing between processes; administration commands need the sqlite store`);
  const store = openSqliteStore({ file: config.store.sqlite_file });
  try {
    const tokens = await createTokenModule({ config, store, clock: systemClock, metrics: createMetrics(), logger: createLogger(config.observability.logging.level === 'silent' ? 'silent' : 'warn', process.stderr) });
    tokens.setIssuer(config.token_module.issuer ?? `http://${config.http.address}`);
    return await fn(tokens, config);
  } finally {
    await store.close();
  }
}
