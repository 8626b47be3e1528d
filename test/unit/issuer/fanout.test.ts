import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryCache, type Cache } from '../../../src/cache/index.js';
import { createFanOut, KEYS_CHANNEL, REVOCATIONS_CHANNEL } from '../../../src/issuer/fanout.js';
import { createRevocationList } from '../../../src/issuer/revocation_list.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { openMemoryStore, type Store } from '../../../src/store/index.js';
import { metricValue } from '../../helpers/sidecar.js';

describe('token-module fan-out', () => {
  let cache: Cache;
  let store: Store;
  const clock = createManualClock();
  beforeEach(() => {
    cache = createMemoryCache({ clock });
    store = openMemoryStore();
  });
  afterEach(async () => {
    await cache.close();
    await store.close();
  });

  it('holds a revocation announced by another replica only once the store confirms it', async () => {
    const metrics = createMetrics();
    const logger = createLogger('silent');
    const here = createRevocationList(store, clock);
    const fanout = createFanOut({ cache, metrics, logger });
    await fanout.listen({ revoked: (jti) => here.learn(jti), keysChanged: async () => {}, resync: async () => {} });
    // Another replica: writes the store, then announces.
    const there = createRevocationList(store, clock, createFanOut({ cache, metrics, logger }).revoked);
    await there.revoke('0b6a4c2e-1111-4aaa-8bbb-000000000001', clock.now() + 60_000);
    await until(() => here.has('0b6a4c2e-1111-4aaa-8bbb-000000000001'));
    // A message for a jti the store never revoked revokes nothing.
    await cache.publish(REVOCATIONS_CHANNEL, '0b6a4c2e-1111-4aaa-8bbb-000000000002');
    await sleep(50);
    expect(here.has('0b6a4c2e-1111-4aaa-8bbb-000000000002')).toBe(false);
  });

  it('ignores malformed messages and applies well-formed key notices', async () => {
    const lines: string[] = [];
    const logger = createLogger('warn', { write: (l: string) => void lines.push(l) });
    const fanout = createFanOut({ cache, metrics: createMetrics(), logger });
    let reloads = 0;
    const stop = await fanout.listen({ revoked: async () => {}, keysChanged: async () => void reloads++, resync: async () => {} });
    await cache.publish(KEYS_CHANNEL, 'not an id; {"token":"eyJ..."}');
    await fanout.keysChanged('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    await until(() => reloads === 1);
    expect(lines.join('')).toContain('ignored a malformed fan-out message');
    expect(lines.join('')).not.toContain('eyJ');
    await stop();
    await fanout.keysChanged('another-kid');
    await sleep(20);
    expect(reloads).toBe(1);
  });

  it('never fails the change it announces when publishing fails: counts and logs it', async () => {
    const metrics = createMetrics();
    const lines: string[] = [];
    const fanout = createFanOut({ cache, metrics, logger: createLogger('error', { write: (l: string) => void lines.push(l) }) });
    await cache.close();
    await expect(fanout.revoked('some-jti')).resolves.toBeUndefined();
    await expect(fanout.keysChanged('some-kid')).resolves.toBeUndefined();
    expect(await metricValue(metrics, 'auth_cache_errors_total', { operation: 'publish' })).toBe(2);
    expect(lines.filter((l) => l.includes('fan-out publish failed'))).toHaveLength(2);
  });
});

async function until(condition: () => boolean, timeoutMs = 1_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}
