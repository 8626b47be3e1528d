import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latencyHistogram, summarize } from './latency.js';
import type { LoadResult, LoadSpec } from './load_grpc.js';

/** True when nghttp2's h2load is on PATH (Debian package nghttp2-client). */
export function h2loadAvailable(): boolean {
  return spawnSync('h2load', ['--version'], { encoding: 'utf8' }).status === 0;
}

/**
 * Load with h2load over h2c: closed loop with `-m concurrency` over `connections` (default 1); open
 * loop on a 1 ms grid (see h2loadArgs). Latency per request comes from `--log-file`. h2load sees
 * HTTP status only (gRPC status travels in trailers), so the caller checks a sample request through a
 * gRPC client first; the first request's bytes are sent every time.
 */
export async function runH2load(spec: LoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-h2load-'));
  try {
    writeFileSync(join(dir, 'body.bin'), grpcFrame(spec.requests[0]!));
    const log = join(dir, 'requests.log');
    const seconds = Math.max(0.1, spec.durationMs / 1000);
    const open = spec.mode === 'open';
    const args = h2loadArgs(spec, seconds, join(dir, 'body.bin'), log, open ? OPEN_LOOP_WARMUP_SECONDS : 0);
    // An open loop sends a fixed count: far above the server's capacity the queue takes longer to
    // drain than the phase lasted. Bounded: 30 s past the phase the run is cut and the phase fails.
    const output = await run(args, (seconds + 30) * 1000);
    const summary = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
    const finished = /finished in ([\d.]+)m?s, ([\d.]+) req\/s/.exec(output);
    if (!summary || !finished) throw new Error(`cannot read h2load output:\n${output.slice(-2000)}`);
    // Each line: start (µs since the epoch), HTTP status, latency (µs).
    const lines = readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t').map(Number) as [number, number, number]);
    // Open loop: requests that started in the warm-up second are answered but not measured.
    let from = -Infinity;
    if (open && lines.length) from = lines.reduce((first, [start]) => Math.min(first, start), Infinity) + OPEN_LOOP_WARMUP_SECONDS * 1e6;
    const histogram = latencyHistogram();
    let non2xx = 0;
    let measured = 0;
    for (const [start, status, micros] of lines) {
      if (status !== 200) non2xx++;
      else if (start >= from) {
        histogram.recordValue(Math.max(1, micros));
        measured++;
      }
    }
    const errors = Number(summary[5]) + Number(summary[6]) + Number(summary[7]) + non2xx;
    return {
      requests: measured,
      ...(lines.length > measured ? { answered: lines.length } : {}),
      errors,
      errorSamples: errors ? [`h2load: ${summary[0]}`] : [],
      rate: Math.round(Number(finished[2])),
      ...summarize(histogram),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One gRPC message as it travels: uncompressed flag, 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.byteLength);
  frame.writeUInt32BE(message.byteLength, 1);
  Buffer.from(message.buffer, message.byteOffset, message.byteLength).copy(frame, 5);
  return frame;
}

/** Connections an open-loop phase is spread over: h2load's rate timer ticks at most every 10 ms per connection. */
export const OPEN_LOOP_CONNECTIONS = 10;

/**
 * An open-loop phase opens its connections when it starts, and the first tens of milliseconds on ten
 * new HTTP/2 sessions can stall a server for long enough to queue a few hundred requests (seen on the
 * floor too: 20-330 ms at 5000 req/s). A sidecar's proxy keeps its connections, so the phase runs one
 * second longer at its rate and the requests started in that first second are not measured.
 */
export const OPEN_LOOP_WARMUP_SECONDS = 1;

/**
 * h2load's arguments for one phase.
 *
 * Open loop: h2load's `--rps` timer fires at most every 10 ms per connection (nghttp2 1.52 uses
 * max(10 ms, 1/rps) as its period) and sends what is due as one burst, so one connection at 1000
 * req/s sends bursts of 10 every 10 ms and each request's latency includes waiting behind up to nine
 * others. That is not a fixed rate. Instead the rate is split over OPEN_LOOP_CONNECTIONS connections
 * whose starts are staggered across one timer period (`-r 1 --rate-period`), so the bursts interleave:
 * rate/1000 requests every millisecond, the same grid as the Node generator. The request count is
 * fixed (`-n`, rate x (seconds + warm-up): h2load refuses `-D` with `-r`), and up to 1000 streams per
 * connection keep the schedule from waiting for answers.
 */
export function h2loadArgs(spec: LoadSpec, seconds: number, bodyFile: string, logFile: string, warmupSeconds = 0): string[] {
  const common = ['-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--log-file', logFile, `http://${spec.address}${spec.path}`];
  if (spec.mode === 'closed') {
    const connections = Math.max(1, spec.connections ?? 1);
    return ['-c', String(connections), '-m', String(Math.max(1, Math.ceil((spec.concurrency ?? 1) / connections))), '-D', `${Math.round(seconds * 1000)}ms`, ...common];
  }
  const rate = spec.rate ?? 0;
  if (!(rate > 0)) throw new Error('an open-loop phase needs a rate');
  const connections = Math.max(OPEN_LOOP_CONNECTIONS, spec.connections ?? 1);
  const perConnection = rate / connections;
  // One timer period of a connection, split evenly between the connections' starts (h2load takes whole milliseconds).
  const periodMs = Math.max(10, 1000 / perConnection);
  const staggerMs = Math.max(1, Math.round(periodMs / connections));
  const requests = Math.max(connections, Math.round(rate * (seconds + warmupSeconds)));
  return ['-c', String(connections), '-r', '1', '--rate-period', `${staggerMs}ms`, '--rps', String(perConnection), '-m', '1000', '-n', String(requests), ...common];
}

function run(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += String(b)));
    child.stderr.on('data', (b: Buffer) => (out += String(b)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else if (timedOut) reject(new Error(`h2load was stopped after ${timeoutMs / 1000} s with requests still unanswered (an open loop far above what the server answers per second)`));
      else reject(new Error(`h2load exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
}
