import type { Cache } from '../cache/index.js';
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

/**
 * A fixed-window counter per key (client IP) on the `Cache` port: in this process with the memory
 * cache, across every replica with Redis. The window starts with its first attempt and lasts a
 * minute.
 *
 * When the cache fails (Redis down or slow) the limit fails open: the attempt is let through, the
 * failure counted in `auth_cache_errors_total{operation="increment"}` and logged (at most once per
 * `LOG_EVERY_MS`). Failing closed would turn a cache outage into a login outage for everyone,
 * while password guessing stays bounded by the per-account lockout, which lives in the store.
 */
export interface RateLimiter {
  /** Counts one attempt; resolves to the seconds to wait when over the limit, else undefined. */
  take(key: string): Promise<number | undefined>;
}

export interface RateLimiterOptions {
  cache: Cache;
  /** Key namespace (`login`, `authorize`): keys are `rl:<name>:<key>`. */
  name: string;
  perMinute: number;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** Runs for each refused attempt (the caller counts it in a metric). */
  onRefused?: () => void;
}

const WINDOW_MS = 60_000;
const LOG_EVERY_MS = 10_000;

export function createRateLimiter(o: RateLimiterOptions): RateLimiter {
  let lastLog = -Infinity;
  let unlogged = 0;
  const failedOpen = (err: unknown) => {
    o.metrics.cacheErrors.inc({ operation: 'increment' });
    unlogged++;
    const now = o.clock.now();
    if (now - lastLog < LOG_EVERY_MS) return;
    o.logger.error({ limiter: o.name, error: errorMessage(err), failures: unlogged }, 'rate limit cache failed; letting attempts through (fail open)');
    lastLog = now;
    unlogged = 0;
  };
  return {
    async take(key) {
      if (o.perMinute <= 0) return undefined;
      let window;
      try {
        window = await o.cache.increment(`rl:${o.name}:${key}`, WINDOW_MS);
      } catch (err) {
        failedOpen(err);
        return undefined;
      }
      if (window.count <= o.perMinute) return undefined;
      o.onRefused?.();
      return Math.max(1, Math.ceil(window.resetMs / 1000));
    },
  };
}
