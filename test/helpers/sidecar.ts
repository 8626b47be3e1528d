import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { createCheckClient, type CheckClient } from '../../src/extauthz/client.js';
import type { HealthCheckResponse_ServingStatus } from '../../src/gen/grpc/health/v1/health_pb.js';
import { checkHealth } from '../../src/grpc/health_client.js';
import type { Clock } from '../../src/lib/clock.js';
import { startServer, type PortcullisServer } from '../../src/server.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';

export const EXAMPLE_POLICIES = new URL('../../policies', import.meta.url).pathname;

export interface Sidecar {
  server: PortcullisServer;
  client: CheckClient;
  address: string;
  metrics: Metrics;
  /** JSON log lines written by the server. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Starts the real server on a free loopback port, with captured logs and its own metric registry. */
export async function startSidecar(config: ConfigInput, clock?: Clock): Promise<Sidecar> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = createMetrics(undefined, { defaultMetrics: true });
  const cfg = parseConfig({
    dev_issuer: { enabled: false },
    ...config,
    grpc: { address: '127.0.0.1:0', warmup_checks: 10, ...config.grpc },
    admin: { address: '127.0.0.1:0', ...config.admin },
    http: { address: '127.0.0.1:0', ...config.http },
    store: { driver: 'memory', ...config.store },
    token_module: { kek: randomBytes(32).toString('base64url'), ...config.token_module },
    policies: { dir: EXAMPLE_POLICIES, ...config.policies },
  });
  const server = await startServer(cfg, { logger: createLogger('debug', sink), metrics, ...(clock ? { clock } : {}) });
  const address = `127.0.0.1:${server.grpcPort}`;
  const client = createCheckClient(address);
  return {
    server,
    client,
    address,
    metrics,
    logs,
    async close() {
      client.close();
      await server.close();
    },
  };
}

export async function healthCheck(address: string, service = ''): Promise<{ status: HealthCheckResponse_ServingStatus }> {
  return { status: await checkHealth(address, service) };
}

/** Reads a counter/gauge value, or a histogram's `_count` / `_sum`, summed over matching labels. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const base = name.replace(/_(count|sum)$/, '');
  const all = await metrics.registry.getMetricsAsJSON();
  const metric = all.find((m) => m.name === name) ?? all.find((m) => m.name === base);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const values = (metric as unknown as { values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }> }).values;
  return values
    .filter((v) => (v.metricName ?? metric.name) === name)
    .filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))
    .reduce((sum, v) => sum + v.value, 0);
}
