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
 * Load with h2load over h2c, one connection (or `connections`): closed loop with `-m concurrency`, open loop with
 * `--rps` and room for 1000 streams so the schedule does not wait for answers. Latency per request
 * comes from `--log-file`. h2load sees HTTP status only (gRPC status travels in trailers), so the
 * caller checks a sample request through a gRPC client first; the first request's bytes are sent
 * every time.
 */
export async function runH2load(spec: LoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-h2load-'));
  try {
    const message = spec.requests[0]!;
    const body = Buffer.alloc(5 + message.byteLength);
    body.writeUInt32BE(message.byteLength, 1);
    Buffer.from(message.buffer, message.byteOffset, message.byteLength).copy(body, 5);
    writeFileSync(join(dir, 'body.bin'), body);
    const log = join(dir, 'requests.log');
    const seconds = Math.max(1, Math.round(spec.durationMs / 1000));
    // Rates and streams are per connection in h2load: the totals are split evenly.
    const connections = Math.max(1, spec.connections ?? 1);
    const load = spec.mode === 'open' ? ['-m', '1000', '--rps', String(Math.max(1, Math.round((spec.rate ?? 0) / connections)))] : ['-m', String(Math.max(1, Math.ceil((spec.concurrency ?? 1) / connections)))];
    const args = ['-c', String(connections), ...load, '-D', String(seconds), '-d', join(dir, 'body.bin'), '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--log-file', log, `http://${spec.address}${spec.path}`];
    const output = await run(args, (seconds + 30) * 1000);
    const summary = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
    const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(output);
    if (!summary || !finished) throw new Error(`cannot read h2load output:\n${output.slice(-2000)}`);
    const histogram = latencyHistogram();
    let non2xx = 0;
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (!line) continue;
      const [, status, micros] = line.split('\t');
      if (status !== '200') non2xx++;
      else histogram.recordValue(Math.max(1, Number(micros)));
    }
    const errors = Number(summary[5]) + Number(summary[6]) + Number(summary[7]) + non2xx;
    return {
      requests: Number(summary[4]),
      errors,
      errorSamples: errors ? [`h2load: ${summary[0]}`] : [],
      rate: Math.round(Number(finished[2])),
      ...summarize(histogram),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += String(b)));
    child.stderr.on('data', (b: Buffer) => (out += String(b)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`h2load exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
}
