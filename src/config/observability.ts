import { z } from 'zod';

/** `observability`: logs, metrics, traces and the decision log. Cross-field checks are in `checkObservability`. */

const otlpProtocol = z.enum(['http/protobuf', 'grpc']);

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const logging = z
  .object({
    level: z.enum(LOG_LEVELS).default('info').describe('Log level. Env `PORTCULLIS_LOG_LEVEL`.'),
    format: z.enum(['json', 'text']).default('json').describe('`json`: one JSON object per line (for collectors). `text`: human-readable lines through pino-pretty (development); the same fields and the same redaction.'),
  })
  .strict()
  .prefault({});

const metrics = z
  .object({
    provider: z.enum(['prometheus', 'otel', 'both', 'none']).default('prometheus').describe('Where the metric catalog goes: `prometheus` serves `GET /metrics` on the admin listener; `otel` pushes the same instruments over OTLP (and `/metrics` answers 404); `both`; `none` exports nothing (`/metrics` answers 404).'),
    endpoint: z.url().optional().describe('OTLP metrics endpoint. Unset: `http://127.0.0.1:4318/v1/metrics` for `http/protobuf`, `http://127.0.0.1:4317` for `grpc`.'),
    protocol: otlpProtocol.default('http/protobuf').describe('OTLP transport: `http/protobuf` or `grpc`.'),
    insecure: z.boolean().optional().describe('gRPC only: `true` sends without TLS, `false` with TLS. Unset: follows the endpoint scheme (`http://` plaintext, `https://` TLS); a setting that contradicts the scheme is refused.'),
    export_interval_ms: z.number().int().min(100).max(3_600_000).default(15000).describe('How often the catalog is collected and pushed over OTLP.'),
  })
  .strict()
  .prefault({});

const tracing = z
  .object({
    enabled: z.boolean().default(false).describe('Export traces over OTLP. Off: no span is created on the Check path at all.'),
    endpoint: z.url().optional().describe('OTLP traces endpoint (a collector). Unset: `http://127.0.0.1:4318/v1/traces` for `http/protobuf`, `http://127.0.0.1:4317` for `grpc`.'),
    protocol: otlpProtocol.default('http/protobuf').describe('OTLP transport: `http/protobuf` or `grpc`.'),
    insecure: z.boolean().optional().describe('gRPC only: `true` sends without TLS, `false` with TLS. Unset: follows the endpoint scheme (`http://` plaintext, `https://` TLS); a setting that contradicts the scheme is refused.'),
    sample_rate: z.number().min(0).max(1).default(0.1).describe('Share of new traces recorded (parent-based: a sampled caller trace, from `traceparent`, is always continued).'),
    export_interval_ms: z.number().int().min(10).max(60000).default(5000).describe('How often batched spans are sent.'),
    export_batch_size: z.number().int().min(1).max(2048).default(64).describe('Most spans per export request; a full batch is sent at once, without waiting for the interval. Encoding runs on the event loop (~6-10 µs per span), so a small batch is a short pause (512 spans: ~4 ms). One export is in flight at a time, so at most this many spans leave per collector round trip: raise it for a distant collector (64 spans per 30 ms is ~2100 spans/s; past that the 2048-span queue fills and spans are dropped).'),
  })
  .strict()
  .prefault({});

const decisionLog = z
  .object({
    enabled: z.boolean().default(false).describe('Write one JSON record per decision (id, time, request summary without credentials or query string, hashed subject, result, determining policies, policy revision, latency).'),
    destination: z.string().min(1).default('stdout').describe('`stdout`, or a file path the records are appended to (created if missing).'),
    sample_rate: z.number().min(0).max(1).default(1).describe('Share of decisions recorded (denials and allows alike).'),
    max_per_second: z.number().int().positive().default(1000).describe('Token-bucket cap on records per second (burst of the same size); records over it are dropped and counted in `auth_decision_log_dropped_total`.'),
  })
  .strict()
  .prefault({});

export const observabilitySchema = z
  .object({
    service_name: z.string().min(1).default('portcullis').describe('`service.name` of exported telemetry.'),
    logging: logging.describe('Logs (pino).'),
    metrics: metrics.describe('Metric export: Prometheus scrape and/or OTLP push of the one catalog.'),
    tracing: tracing.describe('OpenTelemetry tracing.'),
    decision_log: decisionLog.describe('Decision log: a sampled, rate-capped stream of decision records.'),
  })
  .strict()
  .prefault({});

type Observability = z.output<typeof observabilitySchema>;
type Issue = { path: (string | number)[]; message: string };

/** `insecure` must agree with the endpoint scheme, and applies to gRPC only. */
export function checkObservability(o: Observability): Issue[] {
  const issues: Issue[] = [];
  for (const [name, section] of [['metrics', o.metrics], ['tracing', o.tracing]] as const) {
    if (section.insecure === undefined) continue;
    const path = ['observability', name, 'insecure'];
    if (section.protocol !== 'grpc') issues.push({ path, message: 'applies to protocol: grpc only (http/protobuf follows the endpoint scheme)' });
    else if (section.endpoint?.startsWith('https://') && section.insecure) issues.push({ path, message: 'contradicts the https:// endpoint (use http:// for plaintext)' });
    else if ((section.endpoint ?? 'http://').startsWith('http://') && !section.insecure) issues.push({ path, message: 'contradicts the http:// endpoint (use https:// for TLS)' });
  }
  return issues;
}

/** The OTLP endpoint a section sends to, with the protocol's default when unset. */
export function otlpEndpoint(section: { endpoint?: string | undefined; protocol: 'http/protobuf' | 'grpc' }, signal: 'traces' | 'metrics'): string {
  return section.endpoint ?? (section.protocol === 'grpc' ? 'http://127.0.0.1:4317' : `http://127.0.0.1:4318/v1/${signal}`);
}
