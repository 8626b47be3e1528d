import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { metricValue } from './sidecar.js';

/** What a client sees of an ext_authz answer: HTTP status, challenge, JSON body (for denials). */
export interface Seen {
  status: number;
  grpcCode: number | undefined;
  wwwAuthenticate: string | undefined;
  body: Record<string, unknown> | undefined;
}

export function seen(res: CheckResponse): Seen {
  if (res.httpResponse.case === 'okResponse') return { status: 200, grpcCode: res.status?.code, wwwAuthenticate: undefined, body: undefined };
  if (res.httpResponse.case !== 'deniedResponse') throw new Error(`CheckResponse without an http_response (${String(res.httpResponse.case)})`);
  const denied = res.httpResponse.value;
  return {
    status: denied.status?.code ?? 403,
    grpcCode: res.status?.code,
    wwwAuthenticate: denied.headers.find((h) => h.header?.key === 'www-authenticate')?.header?.value,
    body: JSON.parse(denied.body) as Record<string, unknown>,
  };
}

/** The `Bearer` challenge of an invalid token, as the pipeline renders it. */
export const invalidTokenChallenge = (description: string) => `Bearer realm="portcullis", error="invalid_token", error_description="${description}"`;

export const BARE_CHALLENGE = 'Bearer realm="portcullis"';

/** A labelled metric's value now; `delta()` gives how much it moved since. */
export async function counter(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<{ delta(): Promise<number> }> {
  const before = await metricValue(metrics, name, labels);
  return { delta: async () => (await metricValue(metrics, name, labels)) - before };
}

/** Every labelled series of a counter, as `label=value,…` -> value, for asserting exactly which moved. */
export async function seriesOf(metrics: Metrics, name: string): Promise<Map<string, number>> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const out = new Map<string, number>();
  for (const v of (metric as unknown as { values: Array<{ value: number; labels: Record<string, string | number> }> }).values) {
    out.set(Object.entries(v.labels).sort().map(([k, x]) => `${k}=${x}`).join(','), v.value);
  }
  return out;
}

/** The series that moved between two snapshots, with how much. */
export function moved(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) out[k] = v - (before.get(k) ?? 0);
  return out;
}
