import * as hdr from 'hdr-histogram-js';
import { Worker } from 'node:worker_threads';
import type { WorkerJob, WorkerResult } from './load_worker.js';

export interface LoadSpec {
  address: string;
  path: string;
  requests: Uint8Array[];
  expect: 'allow' | 'any';
  mode: 'open' | 'closed';
  /** Open loop: requests per second in total. */
  rate?: number;
  /** Closed loop: requests in flight in total. */
  concurrency?: number;
  durationMs: number;
  workers?: number;
  /** Each request may be sent once (DPoP proofs): workers get disjoint slices and stop when theirs runs out. */
  singleUse?: boolean;
}

export interface LoadResult {
  requests: number;
  errors: number;
  errorSamples: string[];
  /** Completed requests per second. */
  rate: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** A single-use pool ran out before the phase's time was up (the phase is shorter than asked). */
  exhausted?: boolean;
}

/** Runs the Node load generator (worker threads, grpc-js, hdr-histogram-js) and merges the workers' histograms. */
export async function runNodeLoad(spec: LoadSpec): Promise<LoadResult> {
  const workers = Math.max(1, spec.workers ?? 1);
  const jobs: WorkerJob[] = Array.from({ length: workers }, (_, w) => ({
    address: spec.address,
    path: spec.path,
    requests: spec.singleUse ? spec.requests.filter((_, i) => i % workers === w) : spec.requests,
    singleUse: spec.singleUse ?? false,
    expect: spec.expect,
    mode: spec.mode,
    rate: (spec.rate ?? 0) / workers,
    concurrency: Math.max(1, Math.round((spec.concurrency ?? 1) / workers)),
    durationMs: spec.durationMs,
    maxInFlight: 20_000,
  }));
  const results = await Promise.all(jobs.map(runWorker));
  const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  for (const r of results) merged.add(hdr.decodeFromCompressedBase64(r.histogram));
  const completed = results.reduce((n, r) => n + r.completed, 0);
  const elapsed = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  const ms = (micros: number) => Math.round(micros) / 1000;
  return {
    requests: completed,
    errors: results.reduce((n, r) => n + r.errors, 0),
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 5),
    exhausted: results.some((r) => r.exhausted),
    rate: Math.round(completed / elapsed),
    p50: ms(merged.getValueAtPercentile(50)),
    p90: ms(merged.getValueAtPercentile(90)),
    p99: ms(merged.getValueAtPercentile(99)),
    p999: ms(merged.getValueAtPercentile(99.9)),
    max: ms(merged.maxValue),
  };
}

function runWorker(job: WorkerJob): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    // Workers do not inherit the tsx loader: register it inside the worker, then load the TypeScript worker.
    const entry = new URL('./load_worker.ts', import.meta.url).href;
    const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    const worker = new Worker(bootstrap, { eval: true, workerData: job });
    worker.once('message', (m: WorkerResult) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load worker exited with ${code}`));
    });
  });
}
