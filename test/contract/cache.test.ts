import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/cache/index.js';
import { createManualClock } from '../../src/lib/clock.js';
import { describeCacheContract } from './cache_contract.js';

describeCacheContract('memory', () => createMemoryCache());

describe('memory cache', () => {
  it('expires one-time values on the injected clock', async () => {
    const clock = createManualClock();
    const cache = createMemoryCache({ clock });
    expect(await cache.addOnce('k', 1_000)).toBe(true);
    clock.advance(999);
    expect(await cache.addOnce('k', 1_000)).toBe(false);
    clock.advance(1);
    expect(await cache.addOnce('k', 1_000)).toBe(true);
  });

  it('stays within maxEntries, dropping expired entries first and then the oldest', async () => {
    const clock = createManualClock();
    const cache = createMemoryCache({ clock, maxEntries: 3 });
    await cache.addOnce('short', 10);
    await cache.addOnce('a', 10_000);
    await cache.addOnce('b', 10_000);
    clock.advance(20);
    // 'short' has expired: it makes room, and 'a' (older but live) stays.
    expect(await cache.addOnce('c', 10_000)).toBe(true);
    expect(await cache.addOnce('a', 10_000)).toBe(false);
    // Full of live entries: the oldest ('a') goes.
    expect(await cache.addOnce('d', 10_000)).toBe(true);
    expect(await cache.addOnce('a', 10_000)).toBe(true);
  });
});
