import type { MetricsSource } from './metrics.js';
import { createMetricExporter, createSpanExporter, type OtlpTarget } from './otlp_exporters.js';
import { requestContextManager } from './request_context.js';

export interface TracingOptions extends OtlpTarget {
  serviceName: string;
  sampleRate: number;
  exportIntervalMs: number;
  /** Most spans per OTLP export request (a full batch is sent at once). */
  exportBatchSize: number;
}

/**
 * Registers the OpenTelemetry trace SDK: OTLP export (HTTP/protobuf or gRPC) in batches, a
 * parent-based ratio sampler, W3C trace context, AsyncLocalStorage context. Only the composition
 * root calls this; the SDK is loaded only then.
 */
export async function startTracing(o: TracingOptions): Promise<{ shutdown(): Promise<void> }> {
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } = await import('@opentelemetry/sdk-trace-node');
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': o.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRate) }),
    spanProcessors: [new BatchSpanProcessor(await createSpanExporter(o), { scheduledDelayMillis: o.exportIntervalMs, maxExportBatchSize: o.exportBatchSize })],
  });
  // The process's one AsyncLocalStorage (request_context.ts) carries the active span too.
  provider.register({ contextManager: requestContextManager });
  return { shutdown: () => provider.shutdown() };
}

export interface MetricsExportOptions extends OtlpTarget {
  serviceName: string;
  registry: MetricsSource;
  exportIntervalMs: number;
}

/**
 * Pushes the metric catalog over OTLP: a periodic reader collects the prom-client registry through
 * a MetricProducer (no second set of instruments) and exports it. The meter provider is private
 * (not registered globally) and holds no instruments of its own; shutdown sends a last export.
 */
export async function startMetricsExport(o: MetricsExportOptions): Promise<{ shutdown(): Promise<void> }> {
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const { MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
  const { createPromMetricProducer } = await import('./prom_producer.js');
  const reader = new PeriodicExportingMetricReader({
    exporter: await createMetricExporter(o),
    exportIntervalMillis: o.exportIntervalMs,
    exportTimeoutMillis: Math.min(o.exportIntervalMs, 30_000),
    metricProducers: [createPromMetricProducer(o.registry)],
  });
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': o.serviceName }), readers: [reader] });
  return { shutdown: () => provider.shutdown() };
}
