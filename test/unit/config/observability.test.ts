import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { otlpEndpoint } from '../../../src/config/observability.js';

function configError(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

describe('observability config', () => {
  it('defaults: JSON logs at info, Prometheus scraping only, tracing and the decision log off', () => {
    const o = parseConfig({}).observability;
    expect(o.logging).toEqual({ level: 'info', format: 'json' });
    expect(o.metrics).toMatchObject({ provider: 'prometheus', protocol: 'http/protobuf', export_interval_ms: 15000 });
    expect(o.tracing).toMatchObject({ enabled: false, protocol: 'http/protobuf', sample_rate: 0.1, export_interval_ms: 5000, export_batch_size: 64 });
    expect(o.decision_log).toEqual({ enabled: false, destination: 'stdout', sample_rate: 1, max_per_second: 1000 });
  });

  it('refuses a span export batch outside 1..2048 (the SDK queue holds 2048)', () => {
    for (const export_batch_size of [0, 2049, 1.5]) expect(() => parseConfig({ observability: { tracing: { export_batch_size } } })).toThrow(/export_batch_size/);
    expect(parseConfig({ observability: { tracing: { export_batch_size: 2048 } } }).observability.tracing.export_batch_size).toBe(2048);
  });

  it('picks the OTLP endpoint default of each protocol and signal', () => {
    expect(otlpEndpoint({ protocol: 'http/protobuf' }, 'traces')).toBe('http://127.0.0.1:4318/v1/traces');
    expect(otlpEndpoint({ protocol: 'http/protobuf' }, 'metrics')).toBe('http://127.0.0.1:4318/v1/metrics');
    expect(otlpEndpoint({ protocol: 'grpc' }, 'metrics')).toBe('http://127.0.0.1:4317');
    expect(otlpEndpoint({ protocol: 'grpc', endpoint: 'https://collector:4317' }, 'traces')).toBe('https://collector:4317');
  });

  it('refuses an insecure setting that contradicts the endpoint scheme or the protocol', () => {
    const msg = configError({
      observability: {
        tracing: { protocol: 'grpc', endpoint: 'https://collector.example:4317', insecure: true },
        metrics: { protocol: 'http/protobuf', insecure: true },
      },
    });
    expect(msg).toContain('observability.tracing.insecure: contradicts the https:// endpoint');
    expect(msg).toContain('observability.metrics.insecure: applies to protocol: grpc only');
    expect(configError({ observability: { metrics: { protocol: 'grpc', insecure: false } } })).toContain('observability.metrics.insecure: contradicts the http:// endpoint');
    expect(parseConfig({ observability: { tracing: { protocol: 'grpc', endpoint: 'https://c:4317', insecure: false } } }).observability.tracing.insecure).toBe(false);
  });

  it('names bad values precisely', () => {
    const msg = configError({ observability: { metrics: { provider: 'statsd' }, logging: { format: 'xml' }, decision_log: { sample_rate: 2, max_per_second: 0 } } });
    expect(msg).toContain('observability.metrics.provider');
    expect(msg).toContain('observability.logging.format');
    expect(msg).toContain('observability.decision_log.sample_rate');
    expect(msg).toContain('observability.decision_log.max_per_second');
  });

  it('points a config still using log.level to its new place', () => {
    expect(configError({ log: { level: 'debug' } })).toContain('`log.level` moved to `observability.logging.level`');
  });
});
