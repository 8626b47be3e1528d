import * as hdr from 'hdr-histogram-js';
import { latencyHistogram, summarize, type LatencySummary } from './latency.js';
import { Worker } from 'node:worker_threads';
import type { IntervalReport, WorkerJob, WorkerResult } from './load_worker.js';

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
  /**
   * HTTP/2 connections to spread the load over (default 1). A cluster of workers shares connections
   * round-robin, so one connection would keep all but one idle; Envoy opens one per worker thread.
   */
  connections?: number;
  /** Each request may be sent once (DPoP proofs): workers get disjoint slices and stop when theirs runs out. */
  singleUse?: boolean;
}

export interface LoadResult extends LatencySummary {
  requests: number;
  errors: number;
  errorSamples: string[];
  /**
   * Requests the server answered during the load when more than `requests` (those measured): h2load's
   * open loop also sends a warm-up second it does not measure, and the server's CPU covers it.
   */
  answered?: number;
  /** Completed requests per second. */
  rate: number;
  /** A single-use pool ran out before the phase's time was up (the phase is shorter than asked). */
  exhausted?: boolean;
}

/** Runs the Node load generator (worker threads, grpc-js, hdr-histogram-js) and merges the workers' histograms. */
export function runNodeLoad(spec: LoadSpec): Promise<LoadResult> {
  return startNodeLoad(spec).done;
}

export interface RunningLoad {
  /** Replaces the request pool of every worker while the load runs. */
  setRequests(requests: Uint8Array[]): void;
  done: Promise<LoadResult>;
}

/**
 * The Node load generator, steerable while it runs: with `intervalMs`, `onInterval` gets the merged
 * result of each interval (every worker's k-th report); `setRequests` swaps the request pool.
 */
export function startNodeLoad(spec: LoadSpec & { intervalMs?: number }, onInterval?: (index: number, result: LoadResult) => void): RunningLoad {
  // Each load worker thread has a connection of its own.
  const workers = Math.max(1, spec.workers ?? 1, spec.connections ?? 1);
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
    ...(spec.intervalMs ? { intervalMs: spec.intervalMs } : {}),
  }));
  const pending = new Map<number, IntervalReport[]>();
  const onReport = (index: number, report: IntervalReport) => {
    const got = [...(pending.get(index) ?? []), report];
    pending.set(index, got);
    if (got.length < workers) return;
    pending.delete(index);
    onInterval?.(index, merge(got, spec.intervalMs! / 1000));
  };
  const started = jobs.map((job) => runWorker(job, onReport));
  const done = Promise.all(started.map((s) => s.result)).then((results) => ({ ...merge(results, Math.max(...results.map((r) => r.elapsedMs)) / 1000), exhausted: results.some((r) => r.exhausted) }));
  return { setRequests: (requests) => started.forEach((s) => s.worker.postMessage({ requests })), done };
}

/** Adds up worker reports (final or one interval's) covering `seconds`. */
function merge(reports: Array<Pick<WorkerResult, 'histogram' | 'completed' | 'errors' | 'errorSamples'>>, seconds: number): LoadResult {
  const merged = latencyHistogram();
  for (const r of reports) merged.add(hdr.decodeFromCompressedBase64(r.histogram));
  const completed = reports.reduce((n, r) => n + r.completed, 0);
  return {
    requests: completed,
    errors: reports.reduce((n, r) => n + r.errors, 0),
    errorSamples: reports.flatMap((r) => r.errorSamples).slice(0, 5),
    rate: Math.round(completed / seconds),
    ...summarize(merged),
  };
}

function runWorker(job: WorkerJob, onReport: (index: number, report: IntervalReport) => void): { worker: Worker; result: Promise<WorkerResult> } {
  // Workers do not inherit the tsx loader: register it inside the worker, then load the TypeScript worker.
  const entry = new URL('./load_worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  const worker = new Worker(bootstrap, { eval: true, workerData: job });
  let reports = 0;
  const result = new Promise<WorkerResult>((resolve, reject) => {
    worker.on('message', (m: WorkerResult | IntervalReport) => ('interval' in m ? onReport(reports++, m) : resolve(m)));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load worker exited with ${code}`));
    });
  });
  return { worker, result };
}
