import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { readGcTotals } from '../../bench/lib/gc_stats.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

describe('bench GC totals', () => {
  it("sums the pauses of every kind and counts the mark-compacts in prom-client's exposition", async () => {
    const registry = new Registry();
    const gc = new Histogram({ name: 'nodejs_gc_duration_seconds', help: 'gc', labelNames: ['kind'], buckets: [0.001, 0.01, 0.1], registers: [registry] });
    gc.observe({ kind: 'minor' }, 0.0015);
    gc.observe({ kind: 'minor' }, 0.0025);
    gc.observe({ kind: 'major' }, 0.04);
    gc.observe({ kind: 'incremental' }, 0.002);
    const totals = readGcTotals(await registry.metrics());
    expect(totals!.pauseSeconds).toBeCloseTo(0.046, 9);
    expect(totals!.majorCount).toBe(1);
  });

  it('reads the series of a registry with default labels and Node default metrics, and reports none where there is no GC series', async () => {
    const registry = new Registry();
    registry.setDefaultLabels({ service: 'portcullis' });
    collectDefaultMetrics({ register: registry });
    const gc = registry.getSingleMetric('nodejs_gc_duration_seconds') as Histogram;
    gc.observe({ kind: 'major' }, 0.5);
    gc.observe({ kind: 'major' }, 0.25);
    const totals = readGcTotals(await registry.metrics());
    expect(totals!.majorCount).toBeGreaterThanOrEqual(2);
    expect(totals!.pauseSeconds).toBeGreaterThanOrEqual(0.75);
    expect(readGcTotals('# HELP x y\nx 1\n')).toBeUndefined();
    expect(readGcTotals('nodejs_gc_duration_seconds_sum{kind="minor"} NaN\n')).toBeUndefined();
  });

  it("counts the Checks Portcullis answered with a gRPC error status (h2load sees HTTP 200 for them)", async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: true });
    (metrics.registry.getSingleMetric('nodejs_gc_duration_seconds') as Histogram).observe({ kind: 'minor' }, 0.001);
    expect(readGcTotals(await metrics.registry.metrics())!.failedChecks).toBe(0);
    metrics.authzErrors.inc({ code: 'ERR_MALFORMED_REQUEST' });
    metrics.authzErrors.inc({ code: 'ERR_INTERNAL' }, 2);
    metrics.authzShed.inc({ source: 'envoy' });
    expect(readGcTotals(await metrics.registry.metrics())!.failedChecks).toBe(4);
  });
});
