import { describe, expect, it } from 'vitest';
import { clusterMetricsSource } from '../../../src/cluster/metrics_source.js';
import type { WorkerPool } from '../../../src/cluster/pool.js';
import type { WorkerMetrics } from '../../../src/cluster/messages.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { promSample } from '../../helpers/prom_text.js';

/** The primary's registry merged with worker snapshots (real catalogs, as the workers send them over IPC). */
describe('clusterMetricsSource', () => {
  it('sums counters and histograms, keeps the lowest auth_jwks_keys and the highest auth_store_up', async () => {
    const primary = createMetrics();
    const w1 = createMetrics();
    const w2 = createMetrics();
    primary.storeUp.set(1);
    primary.jwksKeys.set({ issuer: 'https://idp' }, 3);
    w1.jwksKeys.set({ issuer: 'https://idp' }, 3);
    w2.jwksKeys.set({ issuer: 'https://idp' }, 0);
    w1.authzDecisions.inc({ permitted: 'true', resource_type: 'Document', source: 'envoy' }, 5);
    w2.authzDecisions.inc({ permitted: 'true', resource_type: 'Document', source: 'envoy' }, 7);
    w1.authzLatency.observe({ source: 'envoy' }, 0.0002);
    w2.authzLatency.observe({ source: 'envoy' }, 0.0004);
    const snapshots = (await Promise.all([w1, w2].map((m) => m.registry.getMetricsAsJSON()))) as WorkerMetrics[];
    const pool = { collectMetrics: async () => snapshots } as unknown as WorkerPool;
    const text = await clusterMetricsSource(primary.registry, () => pool).metrics();
    expect(promSample(text, 'auth_authz_decisions_total', { permitted: 'true', source: 'envoy' })).toBe(12);
    expect(promSample(text, 'auth_authz_latency_seconds_count', { source: 'envoy' })).toBe(2);
    expect(promSample(text, 'auth_jwks_keys', { issuer: 'https://idp' })).toBe(0);
    expect(promSample(text, 'auth_store_up')).toBe(1);
    // Without a pool (workers: 1) it is the primary's registry as is.
    expect(promSample(await clusterMetricsSource(primary.registry, () => undefined).metrics(), 'auth_jwks_keys', { issuer: 'https://idp' })).toBe(3);
  });
});
