import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/index.js';

/**
 * The contract every `Cache` adapter honours, spoken only through the port and on real time (a
 * Redis server keeps its own clock). `open` gives a cache whose keys do not collide with another
 * run's (a fresh memory cache, or a Redis cache under a fresh key prefix).
 */
export function describeCacheContract(name: string, open: () => Promise<Cache> | Cache): void {
  describe(`Cache contract: ${name}`, () => {
    let cache: Cache;
    let second: Cache | undefined;
    beforeEach(async () => {
      cache = await open();
    });
    afterEach(async () => {
      await cache.close();
      await second?.close();
      second = undefined;
    });

    it('records a one-time value once and refuses it again until it expires', async () => {
      expect(await cache.addOnce('dpop:a', 300)).toBe(true);
      expect(await cache.addOnce('dpop:a', 300)).toBe(false);
      expect(await cache.addOnce('dpop:b', 300)).toBe(true);
      await sleep(450);
      expect(await cache.addOnce('dpop:a', 300)).toBe(true);
    });

    it('lets exactly one of many concurrent callers record the same value', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => cache.addOnce('dpop:race', 5_000)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('counts events in a fixed window that restarts after it ends', async () => {
      const first = await cache.increment('rl:x', 400);
      expect(first.count).toBe(1);
      expect(first.resetMs).toBeGreaterThan(0);
      expect(first.resetMs).toBeLessThanOrEqual(400);
      expect((await cache.increment('rl:x', 400)).count).toBe(2);
      expect((await cache.increment('rl:y', 400)).count).toBe(1);
      await sleep(550);
      expect((await cache.increment('rl:x', 400)).count).toBe(1);
    });

    it('does not extend a window with its later events', async () => {
      const first = await cache.increment('rl:z', 2_000);
      await sleep(300);
      const second = await cache.increment('rl:z', 2_000);
      expect(second.count).toBe(2);
      expect(second.resetMs).toBeLessThanOrEqual(first.resetMs - 250);
      expect(second.resetMs).toBeGreaterThan(0);
    });

    it('counts every one of many concurrent increments', async () => {
      const counts = await Promise.all(Array.from({ length: 25 }, () => cache.increment('rl:race', 5_000)));
      expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    });

    it('delivers published messages to subscribers of the channel only, until they unsubscribe', async () => {
      const got: string[] = [];
      const other: string[] = [];
      const stop = await cache.subscribe('revocations', (m) => got.push(m));
      await cache.subscribe('keys', (m) => other.push(m));
      await cache.publish('revocations', 'jti-1');
      await until(() => got.length === 1);
      expect(got).toEqual(['jti-1']);
      expect(other).toEqual([]);
      await stop();
      await cache.publish('revocations', 'jti-2');
      await sleep(100);
      expect(got).toEqual(['jti-1']);
    });

    it('answers ping while open and fails every call once closed', async () => {
      await expect(cache.ping()).resolves.toBeUndefined();
      second = await open();
      await second.close();
      await expect(second.ping()).rejects.toThrow();
      await expect(second.addOnce('dpop:closed', 1000)).rejects.toThrow();
      second = undefined;
    });
  });
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}
