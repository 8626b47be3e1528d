/**
 * Quick Check latency on loopback: starts the built sidecar as a child process with the example
 * policies and the development issuer, then sends a bounded number of Envoy Checks with one
 * cached token (sequential, then with a small concurrency) and prints p50/p90/p99/max.
 * The full benchmark suite with budgets is its own piece of work; this is a smoke measurement.
 *
 *   npm run build && npx tsx bench/quick_check.ts [--requests 5000] [--concurrency 8]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCheckClient, httpCheckRequest } from '../src/extauthz/client.js';
import { systemClock } from '../src/lib/clock.js';
import { loadDevIssuer } from '../src/tokens/index.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const REQUESTS = Math.min(arg('requests', 5000), 100_000);
const CONCURRENCY = Math.min(arg('concurrency', 8), 256);
const DEADLINE = Date.now() + 120_000;

const work = mkdtempSync(join(tmpdir(), 'pc-bench-'));
const keyFile = join(work, 'dev-key.json');
const config = join(work, 'bench.yaml');
writeFileSync(config, `grpc:\n  address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\npolicies:\n  dir: ${new URL('../policies', import.meta.url).pathname}\ndev_issuer:\n  key_file: ${keyFile}\n`);

const child = spawn(process.execPath, [new URL('../dist/cli/main.js', import.meta.url).pathname, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
const address = await new Promise<string>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('sidecar did not start')), 20_000);
  child.stdout!.on('data', (b: Buffer) => {
    for (const line of String(b).split('\n').filter(Boolean)) {
      const l = JSON.parse(line) as { msg?: string; grpc?: string };
      if (l.msg === 'portcullis serving' && l.grpc) {
        clearTimeout(timer);
        resolve(l.grpc);
      }
    }
  });
});

const dev = await loadDevIssuer({ issuer: 'urn:portcullis:dev', audience: 'portcullis', keyFile, clock: systemClock });
const token = await dev.mint({ sub: 'alice', roles: ['viewer'] });
const request = httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${token}` });
const client = createCheckClient(address);

async function runPhase(name: string, total: number, concurrency: number) {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total && Date.now() < DEADLINE) {
      next++;
      const t0 = performance.now();
      const res = await client.check(request);
      samples.push(performance.now() - t0);
      if (res.httpResponse.case !== 'okResponse') throw new Error('expected an allow');
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!.toFixed(3);
  console.log(`${name}: n=${samples.length} c=${concurrency} p50=${q(0.5)}ms p90=${q(0.9)}ms p99=${q(0.99)}ms max=${samples.at(-1)!.toFixed(3)}ms rate=${(samples.length / seconds).toFixed(0)}/s`);
}

try {
  await runPhase('warmup', Math.min(1000, REQUESTS), 4);
  await runPhase('sequential', REQUESTS, 1);
  await runPhase('concurrent', REQUESTS, CONCURRENCY);
} finally {
  client.close();
  child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
