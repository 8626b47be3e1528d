import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../../src/cache/index.js';
import { createRateLimiter } from '../../../src/issuer/rate_limit.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { metricValue } from '../../helpers/sidecar.js';

function setup(perMinute: number) {
  const clock = createManualClock();
  const cache = createMemoryCache({ clock });
  const metrics = createMetrics();
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', new Writable({ write: (chunk, _e, done) => (logs.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()) }));
  let refused = 0;
  const limiter = createRateLimiter({ cache, name: 'login', perMinute, clock, metrics, logger, onRefused: () => refused++ });
  return { clock, cache, metrics, logs, limiter, refused: () => refused };
}

describe('rate limiter on the cache port', () => {
  it('lets perMinute attempts through per key, then answers the seconds left in the window', async () => {
    const { clock, limiter, refused } = setup(3);
    for (let i = 0; i < 3; i++) expect(await limiter.take('10.0.0.1')).toBeUndefined();
    clock.advance(20_000);
    expect(await limiter.take('10.0.0.1')).toBe(40);
    clock.advance(500);
    expect(await limiter.take('10.0.0.1')).toBe(40);
    // Another address has its own window.
    expect(await limiter.take('10.0.0.2')).toBeUndefined();
    expect(refused()).toBe(2);
  });

  it('starts a fresh window a minute after the first attempt of the last one', async () => {
    const { clock, limiter } = setup(1);
    expect(await limiter.take('ip')).toBeUndefined();
    clock.advance(59_999);
    expect(await limiter.take('ip')).toBe(1);
    clock.advance(1);
    expect(await limiter.take('ip')).toBeUndefined();
    expect(await limiter.take('ip')).toBe(60);
  });

  it('counts under rl:<name>:<key>, so limiters sharing a cache do not mix', async () => {
    const { clock, cache, metrics, logger } = { ...setup(1), logger: createLogger('silent') };
    const login = createRateLimiter({ cache, name: 'login', perMinute: 1, clock, metrics, logger });
    const authorize = createRateLimiter({ cache, name: 'authorize', perMinute: 1, clock, metrics, logger });
    expect(await login.take('ip')).toBeUndefined();
    expect(await authorize.take('ip')).toBeUndefined();
    expect(await login.take('ip')).toBe(60);
    expect((await cache.increment('rl:authorize:ip', 60_000)).count).toBe(2);
  });

  it('never counts when disabled (0 per minute)', async () => {
    const { cache, limiter } = setup(0);
    for (let i = 0; i < 100; i++) expect(await limiter.take('ip')).toBeUndefined();
    expect((await cache.increment('rl:login:ip', 60_000)).count).toBe(1);
  });

  it('fails open when the cache fails: lets the attempt through, counts each failure, logs at most every 10 s', async () => {
    const { clock, cache, metrics, logs, limiter, refused } = setup(1);
    await cache.close();
    for (let i = 0; i < 5; i++) expect(await limiter.take('ip')).toBeUndefined();
    expect(await metricValue(metrics, 'auth_cache_errors_total', { operation: 'increment' })).toBe(5);
    expect(refused()).toBe(0);
    expect(logs.filter((l) => l.msg === 'rate limit cache failed; letting attempts through (fail open)')).toHaveLength(1);
    clock.advance(10_000);
    await limiter.take('ip');
    const lines = logs.filter((l) => l.msg === 'rate limit cache failed; letting attempts through (fail open)');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 50, limiter: 'login', failures: 5, error: 'cache is closed' });
  });
});
