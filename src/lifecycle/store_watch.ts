import type { Config } from '../config/index.js';
import type { Clock } from '../lib/clock.js';
import { createStoreWatchdog, type Store, type StoreWatchdog } from '../store/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

export interface StoreWatchOptions {
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Called once when the store has been gone for longer than the production limit. */
  onFatal: ((reason: string) => void) | undefined;
}

/** Pings the store in the background: `auth_store_up`, a log line per outage edge, and in production an exit once it has been gone too long. */
export function watchStore(config: Readonly<Config>, store: Store, o: StoreWatchOptions): StoreWatchdog {
  const limitMs = config.mode === 'production' ? config.lifecycle.store_unavailable_exit_seconds * 1000 : 0;
  o.metrics.storeUp.set(1);
  const watchdog = createStoreWatchdog({
    ping: () => store.ping(),
    clock: o.clock,
    intervalMs: limitMs > 0 ? Math.min(5000, Math.max(250, limitMs / 4)) : 5000,
    giveUpAfterMs: limitMs,
    onDown(err) {
      o.metrics.storeUp.set(0);
      o.logger.error({ err, exit_after_seconds: limitMs / 1000 || undefined }, 'store unavailable');
    },
    onUp(downMs) {
      o.metrics.storeUp.set(1);
      o.logger.warn({ down_seconds: downMs / 1000 }, 'store available again');
    },
    onGiveUp(downMs, err) {
      const reason = `store unavailable for ${Math.round(downMs / 1000)} s (lifecycle.store_unavailable_exit_seconds: ${limitMs / 1000}): ${(err as Error).message}`;
      o.logger.fatal({ err }, reason);
      o.onFatal?.(reason);
    },
  });
  watchdog.start();
  return watchdog;
}
