import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import type { Metric, ResourceMetrics } from '../../src/gen/opentelemetry/proto/metrics/v1/metrics_pb.js';
import { AggregationTemporality } from '../../src/gen/opentelemetry/proto/metrics/v1/metrics_pb.js';
import { startOtlpGrpcReceiver, startOtlpHttpReceiver, type OtlpReceiver } from '../helpers/otlp_receiver.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/** The newest exported data of a metric, across every export received so far. */
function latest(received: ResourceMetrics[], name: string): Metric | undefined {
  for (let i = received.length - 1; i >= 0; i--) {
    for (const sm of received[i]!.scopeMetrics) for (const m of sm.metrics) if (m.name === name) return m;
  }
  return undefined;
}

const attrs = (list: Array<{ key: string; value?: { value: { case?: string; value?: unknown } } }>) => Object.fromEntries(list.map((a) => [a.key, a.value?.value.value]));

function decisionCount(received: ResourceMetrics[], permitted: string, resourceType: string): number {
  const m = latest(received, 'auth_authz_decisions_total');
  if (m?.data.case !== 'sum') return 0;
  const point = m.data.value.dataPoints.find((p) => {
    const a = attrs(p.attributes);
    return a.permitted === permitted && a.resource_type === resourceType && a.source === 'envoy';
  });
  return point?.value.case === 'asDouble' ? point.value.value : 0;
}

describe('OTLP metrics over HTTP (provider otel)', () => {
  let receiver: OtlpReceiver;
  let sidecar: Sidecar;
  beforeAll(async () => {
    receiver = await startOtlpHttpReceiver();
    sidecar = await startSidecar({ observability: { service_name: 'pc-metrics-test', metrics: { provider: 'otel', endpoint: `${receiver.url}/v1/metrics`, export_interval_ms: 100 } } });
  });
  afterAll(async () => {
    await sidecar?.close();
    await receiver?.close();
  });

  it('pushes the catalog after a Check: decision counters as cumulative sums, latency as a histogram with the catalog buckets', async () => {
    for (let i = 0; i < 3; i++) expect((await sidecar.client.check(httpCheckRequest('GET', '/public/x'))).httpResponse.case).toBe('okResponse');
    await expect.poll(() => decisionCount(receiver.metrics, 'true', 'Endpoint'), { timeout: 10_000 }).toBe(3);
    expect(receiver.problems).toEqual([]);
    const decisions = latest(receiver.metrics, 'auth_authz_decisions_total')!;
    expect(decisions.data.case).toBe('sum');
    if (decisions.data.case === 'sum') {
      expect(decisions.data.value.isMonotonic).toBe(true);
      expect(decisions.data.value.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE);
    }
    const latency = latest(receiver.metrics, 'auth_authz_latency_seconds')!;
    expect(latency.unit).toBe('s');
    expect(latency.data.case).toBe('histogram');
    if (latency.data.case !== 'histogram') return;
    const point = latency.data.value.dataPoints.find((p) => attrs(p.attributes).source === 'envoy')!;
    expect(point.explicitBounds).toEqual([0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);
    expect(point.bucketCounts).toHaveLength(point.explicitBounds.length + 1);
    expect(point.count).toBe(3n);
    expect(point.bucketCounts.reduce((a, b) => a + b, 0n)).toBe(point.count);
    expect(point.sum).toBeGreaterThan(0);
    // Gauges too, and the resource names the service.
    expect(latest(receiver.metrics, 'nodejs_heap_size_used_bytes')?.data.case).toBe('gauge');
    const resource = receiver.metrics.at(-1)!.resource!;
    expect(attrs(resource.attributes)['service.name']).toBe('pc-metrics-test');
  });

  it('does not serve /metrics for scraping, and says why', async () => {
    const res = await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found', detail: 'metrics are not served for scraping: observability.metrics.provider is otel' });
  });
});

describe('OTLP metrics over gRPC (provider both)', () => {
  let receiver: OtlpReceiver;
  let sidecar: Sidecar;
  beforeAll(async () => {
    receiver = await startOtlpGrpcReceiver();
    sidecar = await startSidecar({ observability: { metrics: { provider: 'both', protocol: 'grpc', endpoint: receiver.url, insecure: true, export_interval_ms: 100 } } });
  });
  afterAll(async () => {
    await sidecar?.close();
    await receiver?.close();
  });

  it('pushes to a collector over OTLP/gRPC and still serves /metrics', async () => {
    expect((await sidecar.client.check(httpCheckRequest('GET', '/documents/d1'))).httpResponse.case).toBe('deniedResponse');
    await expect.poll(() => decisionCount(receiver.metrics, 'false', 'Document'), { timeout: 10_000 }).toBe(1);
    expect(receiver.problems).toEqual([]);
    const text = await (await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/metrics`)).text();
    expect(text).toContain('auth_authz_decisions_total{permitted="false",resource_type="Document",source="envoy"} 1');
  });
});

describe('provider none', () => {
  it('exports nothing and answers /metrics with 404', async () => {
    const sidecar = await startSidecar({ observability: { metrics: { provider: 'none' } } });
    try {
      const res = await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/metrics`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { detail: string }).detail).toContain('provider is none');
    } finally {
      await sidecar.close();
    }
  });
});
