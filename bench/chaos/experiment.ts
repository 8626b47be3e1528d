import { createCheckClient } from '../../src/extauthz/client.js';
import type { LoadResult } from '../lib/load_grpc.js';

/** What one chaos experiment reports: a few lines for people, failed assertions, raw numbers. */
export interface ExperimentResult {
  name: string;
  lines: string[];
  failures: string[];
  data: Record<string, unknown>;
}

export const describeLoad = (label: string, r: LoadResult) =>
  `${label}: ${r.requests} answered at ${r.rate}/s, ${r.errors} errors; p50 ${r.p50} ms, p99 ${r.p99} ms, p99.9 ${r.p999} ms, max ${r.max} ms${r.errorSamples.length ? ` (${r.errorSamples[0]})` : ''}`;

/** The experiment's request must be allowed before any load is measured. */
export async function assertAllowed(address: string, bytes: Uint8Array): Promise<void> {
  const client = createCheckClient(address);
  try {
    const res = await client.checkRaw(bytes);
    if (res.httpResponse.case !== 'okResponse') throw new Error('the experiment request is not allowed');
  } finally {
    client.close();
  }
}
