import type { Clock } from '../lib/clock.js';

/**
 * Fixed-window counter per key (client IP), in process memory. The shared (Redis) variant for
 * several replicas belongs to the cache port. Bounded: stale windows are dropped as it grows.
 */
export interface RateLimiter {
  /** Counts one attempt; returns seconds to wait when over the limit, else undefined. */
  take(key: string): number | undefined;
}

const MAX_KEYS = 100_000;

/** `onRefused` runs for each refused attempt (the caller counts it in a metric). */
export function createRateLimiter(perMinute: number, clock: Clock, onRefused: () => void = () => {}): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    take(key) {
      if (perMinute <= 0) return undefined;
      const now = clock.now();
      let w = windows.get(key);
      if (!w || now - w.start >= 60_000) {
        if (windows.size >= MAX_KEYS) {
          for (const [k, v] of windows) if (now - v.start >= 60_000) windows.delete(k);
          // Still full of live windows: drop the oldest (insertion order), so memory stays bounded.
          for (const k of windows.keys()) {
            if (windows.size < MAX_KEYS) break;
            windows.delete(k);
          }
        }
        w = { start: now, count: 0 };
        windows.set(key, w);
      }
      w.count++;
      if (w.count <= perMinute) return undefined;
      onRefused();
      return Math.ceil((w.start + 60_000 - now) / 1000);
    },
  };
}
