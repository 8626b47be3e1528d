import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';

export interface TracingOptions {
  serviceName: string;
  endpoint: string;
  sampleRate: number;
  exportIntervalMs: number;
}

/**
 * Registers the OpenTelemetry SDK: OTLP/HTTP (protobuf) export in batches, a parent-based ratio
 * sampler, W3C trace context, AsyncLocalStorage context. Only the composition root calls this.
 */
export function startTracing(o: TracingOptions): { shutdown(): Promise<void> } {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': o.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRate) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: o.endpoint }), { scheduledDelayMillis: o.exportIntervalMs })],
  });
  provider.register();
  return { shutdown: () => provider.shutdown() };
}
