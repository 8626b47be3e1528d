import type { ChannelCredentials } from '@grpc/grpc-js';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export type OtlpProtocol = 'http/protobuf' | 'grpc';

export interface OtlpTarget {
  protocol: OtlpProtocol;
  endpoint: string;
  /** gRPC: plaintext when true, TLS when false; unset follows the endpoint scheme. */
  insecure?: boolean | undefined;
}

async function grpcCredentials(t: OtlpTarget): Promise<ChannelCredentials> {
  const { credentials } = await import('@grpc/grpc-js');
  const plaintext = t.insecure ?? t.endpoint.startsWith('http://');
  return plaintext ? credentials.createInsecure() : credentials.createSsl();
}

/**
 * The OTLP span exporter for the configured transport: OTLP/HTTP with protobuf bodies, or OTLP/gRPC.
 * Exporters are loaded only when configured, so a process that exports nothing does not hold them.
 */
export async function createSpanExporter(t: OtlpTarget): Promise<SpanExporter> {
  if (t.protocol === 'grpc') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url: t.endpoint, credentials: await grpcCredentials(t) });
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter({ url: t.endpoint });
}

/** The OTLP metric exporter (cumulative temporality, as the Prometheus catalog counts). */
export async function createMetricExporter(t: OtlpTarget): Promise<PushMetricExporter> {
  if (t.protocol === 'grpc') {
    const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-grpc');
    return new OTLPMetricExporter({ url: t.endpoint, credentials: await grpcCredentials(t) });
  }
  const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-proto');
  return new OTLPMetricExporter({ url: t.endpoint });
}
