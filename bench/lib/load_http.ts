import autocannon, { type Request } from 'autocannon';
import type { LoadResult } from './load_grpc.js';

export interface HttpLoadSpec {
  url: string;
  /** The request (or a per-connection sequence built by setupRequest/onResponse). */
  requests: Request[];
  /** Requests in flight (connections, one request each). */
  connections: number;
  durationMs: number;
  /** Caps the rate (autocannon paces each connection; a closed loop, so latency under overload is understated). */
  rate?: number;
}

/** HTTP load with autocannon; a non-2xx answer counts as an error. */
export async function runHttpLoad(spec: HttpLoadSpec): Promise<LoadResult> {
  const samples: string[] = [];
  const requests = spec.requests.map((r) => ({
    ...r,
    onResponse: (status: number, body: string, context: object, headers: Request['headers']) => {
      if ((status < 200 || status > 299) && samples.length < 5) samples.push(`${status} ${body.slice(0, 120)}`);
      if (typeof r.onResponse === 'function') r.onResponse(status, body, context, headers);
    },
  }));
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    duration: Math.max(0.1, spec.durationMs / 1000),
    requests,
    ...(spec.rate ? { overallRate: spec.rate } : {}),
  });
  const completed = result.requests.total;
  return {
    requests: completed,
    errors: result.errors + result.non2xx,
    errorSamples: samples,
    rate: Math.round(completed / result.duration),
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    p999: result.latency.p99_9,
    max: result.latency.max,
  };
}
