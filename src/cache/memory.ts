import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import type { Cache } from './cache.js';

export interface MemoryCacheOptions {
  clock?: Clock;
  /** Most keys held (one-time values and counters together); past it the oldest go first. */
  maxEntries?: number;
}

/**
 * The single-process cache: a Map with expiry times on the injected clock. Bounded: expired
 * entries are swept as it fills, and when every entry is live the oldest is dropped (a TTL is
 * usually the same for one purpose, so insertion order is expiry order).
 */
export function createMemoryCache({ clock = systemClock, maxEntries = 1_000_000 }: MemoryCacheOptions = {}): Cache {
  const entries = new Map<string, { expiresAt: number; count: number }>();
  const channels = new Map<string, Set<(message: string) => void>>();
  let closed = false;

  const live = (key: string, now: number) => {
    const e = entries.get(key);
    if (e && e.expiresAt <= now) {
      entries.delete(key);
      return undefined;
    }
    return e;
  };
  const makeRoom = (now: number) => {
    if (entries.size < maxEntries) return;
    for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k);
    for (const k of entries.keys()) {
      if (entries.size < maxEntries) break;
      entries.delete(k);
    }
  };
  const open = () => {
    if (closed) throw new PortcullisError('ERR_CACHE', 'cache is closed');
  };

  return {
    driver: 'memory',
    async addOnce(key, ttlMs) {
      open();
      const now = clock.now();
      if (live(key, now)) return false;
      makeRoom(now);
      entries.set(key, { expiresAt: now + ttlMs, count: 1 });
      return true;
    },
    async increment(key, windowMs) {
      open();
      const now = clock.now();
      let e = live(key, now);
      if (!e) {
        makeRoom(now);
        e = { expiresAt: now + windowMs, count: 0 };
        entries.set(key, e);
      }
      e.count++;
      return { count: e.count, resetMs: e.expiresAt - now };
    },
    async publish(channel, message) {
      open();
      // Delivered asynchronously, as a broker would: a subscriber never runs inside publish().
      for (const fn of channels.get(channel) ?? []) queueMicrotask(() => fn(message));
    },
    async subscribe(channel, onMessage) {
      open();
      let set = channels.get(channel);
      if (!set) channels.set(channel, (set = new Set()));
      const fn = (m: string) => onMessage(m);
      set.add(fn);
      return async () => {
        set.delete(fn);
      };
    },
    async ping() {
      open();
    },
    async close() {
      closed = true;
      entries.clear();
      channels.clear();
    },
  };
}
