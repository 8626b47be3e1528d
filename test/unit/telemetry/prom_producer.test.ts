import { DataPointType, type HistogramMetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createPromMetricProducer } from '../../../src/telemetry/prom_producer.js';

describe('prom-client registry as an OTel MetricProducer', () => {
  it('converts counters, gauges and histograms (cumulative le buckets to per-bucket counts) per label set', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'x_requests_total', help: 'requests', labelNames: ['outcome'], registers: [registry] });
    const gauge = new Gauge({ name: 'x_keys', help: 'keys', registers: [registry] });
    const histogram = new Histogram({ name: 'x_latency_seconds', help: 'latency', labelNames: ['source'], buckets: [0.1, 1, 10], registers: [registry] });
    counter.inc({ outcome: 'ok' }, 3);
    counter.inc({ outcome: 'error' });
    gauge.set(7);
    for (const v of [0.05, 0.5, 0.7, 5, 50]) histogram.observe({ source: 'envoy' }, v);
    histogram.observe({ source: 'app' }, 0.2);

    const { resourceMetrics, errors } = await createPromMetricProducer(registry).collect();
    expect(errors).toEqual([]);
    const metrics = resourceMetrics.scopeMetrics[0]!.metrics;
    const byName = (n: string) => metrics.find((m) => m.descriptor.name === n)!;

    const sum = byName('x_requests_total') as SumMetricData;
    expect(sum.dataPointType).toBe(DataPointType.SUM);
    expect(sum.isMonotonic).toBe(true);
    expect(sum.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{ outcome: 'ok' }, 3], [{ outcome: 'error' }, 1]]);
    expect(byName('x_keys').dataPointType).toBe(DataPointType.GAUGE);
    expect(byName('x_keys').dataPoints[0]!.value).toBe(7);

    const hist = byName('x_latency_seconds') as HistogramMetricData;
    expect(hist.descriptor.unit).toBe('s');
    expect(hist.descriptor.description).toBe('latency');
    const envoy = hist.dataPoints.find((p) => p.attributes.source === 'envoy')!;
    expect(envoy.value).toEqual({ buckets: { boundaries: [0.1, 1, 10], counts: [1, 2, 1, 1] }, sum: 56.25, count: 5 });
    const app = hist.dataPoints.find((p) => p.attributes.source === 'app')!;
    expect(app.value.buckets.counts).toEqual([0, 1, 0, 0]);
    expect(hist.dataPoints).toHaveLength(2);
  });
});
