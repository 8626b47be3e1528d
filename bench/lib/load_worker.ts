/**
 * Load generator worker: one grpc-js client sending pre-serialized requests to one method.
 * Open loop: request i is due at start + i / rate whether or not earlier ones answered, and its
 * latency counts from when it was due (no coordinated omission). Closed loop: `concurrency`
 * requests in flight, each sent when the previous one answered.
 *
 * Long runs (soak, chaos): with `intervalMs` the worker also posts an `IntervalReport` every interval
 * (its own histogram of that interval, then reset), and a `{ requests }` message from the parent
 * replaces the request pool while it runs (rotating tokens).
 */
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import { latencyHistogram } from './latency.js';
import { parentPort, workerData } from 'node:worker_threads';
import { fromBinary } from '@bufbuild/protobuf';
import { CheckResponseSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';

export interface WorkerJob {
  address: string;
  path: string;
  requests: Uint8Array[];
  /** Never send a request twice: stop when the pool is used up. */
  singleUse: boolean;
  /** `allow`: a CheckResponse that is not an ok_response counts as an error. */
  expect: 'allow' | 'any';
  mode: 'open' | 'closed';
  rate: number;
  concurrency: number;
  durationMs: number;
  /** Open loop: more requests than this in flight counts the rest as errors instead of queueing forever. */
  maxInFlight: number;
  /** Post an IntervalReport this often (0 or absent: only the final result). */
  intervalMs?: number;
}

export interface IntervalReport {
  interval: true;
  /** Completed / failed requests and the latency histogram of this interval only. */
  histogram: string;
  completed: number;
  errors: number;
  errorSamples: string[];
}

export interface WorkerResult {
  histogram: string;
  sent: number;
  completed: number;
  errors: number;
  errorSamples: string[];
  elapsedMs: number;
  /** A single-use pool ran out before the time was up. */
  exhausted: boolean;
}

const job = workerData as WorkerJob;
const histogram = latencyHistogram();
const client = new Client(job.address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 4 << 20 });
let sent = 0;
let completed = 0;
let errors = 0;
let inFlight = 0;
const errorSamples: string[] = [];
let pool = job.requests;
const interval = { histogram: latencyHistogram(), completed: 0, errors: 0, errorSamples: [] as string[] };
parentPort!.on('message', (m: { requests?: Uint8Array[] }) => {
  if (m.requests?.length) pool = m.requests;
});
const reporter = job.intervalMs
  ? setInterval(() => {
      const report: IntervalReport = { interval: true, histogram: hdr.encodeIntoCompressedBase64(interval.histogram), completed: interval.completed, errors: interval.errors, errorSamples: interval.errorSamples.splice(0) };
      interval.histogram.reset();
      interval.completed = interval.errors = 0;
      parentPort!.postMessage(report);
    }, job.intervalMs)
  : undefined;

function fail(message: string): void {
  errors++;
  interval.errors++;
  if (errorSamples.length < 5) errorSamples.push(message);
  if (interval.errorSamples.length < 5) interval.errorSamples.push(message);
}

/** True when a single-use pool has no request left to send. */
const used = () => job.singleUse && sent >= pool.length;

function send(dueNs: bigint, done: () => void): void {
  const bytes = pool[sent % pool.length]!;
  sent++;
  inFlight++;
  client.makeUnaryRequest(
    job.path,
    (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    (b: Buffer) => b,
    bytes,
    { deadline: Date.now() + 10_000 },
    (err: ServiceError | null, res?: Buffer) => {
      inFlight--;
      const micros = Number((process.hrtime.bigint() - dueNs) / 1000n);
      if (err) fail(`${err.code} ${err.details}`);
      else if (job.expect === 'allow' && !isAllow(res!)) fail('expected an allow');
      else {
        completed++;
        interval.completed++;
        histogram.recordValue(Math.max(1, micros));
        interval.histogram.recordValue(Math.max(1, micros));
      }
      done();
    },
  );
}

function isAllow(bytes: Buffer): boolean {
  const res = fromBinary(CheckResponseSchema, bytes);
  return (res.status?.code ?? 0) === 0 && res.httpResponse.case === 'okResponse';
}

async function openLoop(): Promise<void> {
  const start = process.hrtime.bigint();
  const intervalNs = BigInt(Math.round(1e9 / job.rate));
  const total = Math.floor((job.rate * job.durationMs) / 1000);
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = process.hrtime.bigint();
      while (next < total && !used() && start + BigInt(next) * intervalNs <= now) {
        const due = start + BigInt(next) * intervalNs;
        next++;
        if (inFlight >= job.maxInFlight) {
          fail('generator backlog: more than maxInFlight requests outstanding');
          continue;
        }
        send(due, () => {});
      }
      if (next >= total || used()) return resolve();
      // Sleep until the next request is due instead of spinning (the generator shares the cores with
      // the server). Timers have millisecond resolution, so at high rates a tick sends a small batch
      // up to ~1 ms late; latency counts from the due time, so that lateness is in the measurement.
      const waitMs = Number(start + BigInt(next) * intervalNs - process.hrtime.bigint()) / 1e6;
      if (waitMs > 0) setTimeout(tick, Math.max(1, Math.floor(waitMs)));
      else setImmediate(tick);
    };
    tick();
  });
  await drain();
}

async function closedLoop(): Promise<void> {
  const end = Date.now() + job.durationMs;
  await Promise.all(
    Array.from({ length: job.concurrency }, () => new Promise<void>((resolve) => {
      const loop = () => (Date.now() < end && !used() ? send(process.hrtime.bigint(), loop) : resolve());
      loop();
    })),
  );
}

async function drain(): Promise<void> {
  const limit = Date.now() + 15_000;
  while (inFlight > 0 && Date.now() < limit) await new Promise((r) => setTimeout(r, 5));
  if (inFlight > 0) fail(`${inFlight} requests still in flight at the end`);
}

const started = Date.now();
await (job.mode === 'open' ? openLoop() : closedLoop());
clearInterval(reporter);
parentPort!.removeAllListeners('message');
client.close();
const result: WorkerResult = { histogram: hdr.encodeIntoCompressedBase64(histogram), sent, completed, errors, errorSamples, elapsedMs: Date.now() - started, exhausted: used() };
parentPort!.postMessage(result);
