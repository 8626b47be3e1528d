import type { MetricsSource } from './metrics.js';
import type { Config } from '../config/index.js';
import { otlpEndpoint } from '../config/observability.js';
import { startMetricsExport, startTracing } from './otel.js';

export interface Telemetry {
  /** Whether `GET /metrics` serves the Prometheus text (`metrics.provider` prometheus or both). */
  servesPrometheus: boolean;
  shutdown(): Promise<void>;
}

/** Starts what `observability` asks for: the trace SDK and the OTLP metrics push. */
export async function startTelemetry(o: Readonly<Config['observability']>, registry: MetricsSource): Promise<Telemetry> {
  const t = o.tracing;
  const m = o.metrics;
  const tracing = t.enabled
    ? await startTracing({ serviceName: o.service_name, protocol: t.protocol, endpoint: otlpEndpoint(t, 'traces'), insecure: t.insecure, sampleRate: t.sample_rate, exportIntervalMs: t.export_interval_ms, exportBatchSize: t.export_batch_size })
    : undefined;
  const pushing = m.provider === 'otel' || m.provider === 'both';
  const metrics = pushing ? await startMetricsExport({ serviceName: o.service_name, registry, protocol: m.protocol, endpoint: otlpEndpoint(m, 'metrics'), insecure: m.insecure, exportIntervalMs: m.export_interval_ms }) : undefined;
  return {
    servesPrometheus: m.provider === 'prometheus' || m.provider === 'both',
    async shutdown() {
      await Promise.allSettled([tracing?.shutdown(), metrics?.shutdown()]);
    },
  };
}
