/**
 * Shared pieces of the long runs (`bench/soak.ts`, `bench/chaos.ts`): bounded flags, server memory
 * from /proc and from its own /metrics, and the side operations a run performs while under load.
 */
import { createServer } from 'node:net';
import { rssMb } from './process_stats.js';

export function fatal(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** `--name value` from argv. */
export function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
}

/** `90`, `90s`, `10m`, `1h`, `500ms` as milliseconds, within [min, max]. */
export function durationMs(args: string[], name: string, fallback: string, min: number, max: number): number {
  const text = option(args, name) ?? fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) fatal(`--${name}: "${text}" is not a duration (e.g. 90s, 10m)`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (ms < min || ms > max) fatal(`--${name}: ${text} is outside ${min / 1000} s .. ${max / 1000} s`);
  return ms;
}

/** An integer flag within [min, max]. */
export function count(args: string[], name: string, fallback: number, min: number, max: number): number {
  const text = option(args, name);
  const n = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fatal(`--${name}: ${text} is not an integer in ${min} .. ${max}`);
  return n;
}

export interface MemorySample {
  /** Seconds since the run started. */
  t: number;
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
}

/** One value of a Prometheus text exposition (first series whose line starts with `series`). */
export function metricFrom(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `) || l.startsWith(`${series}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The sum of every series of `name` carrying all of `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && wanted.every((w) => l.includes(w)))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** A loopback port free right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function scrape(admin: string): Promise<string> {
  const res = await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** RSS from /proc, V8 heap from the server's own default metrics. */
export async function memory(pid: number, admin: string, t: number): Promise<MemorySample> {
  const text = await scrape(admin);
  const mb = (v: number | undefined) => Math.round((v ?? 0) / 104_857.6) / 10;
  return { t, rssMb: rssMb(pid), heapUsedMb: mb(metricFrom(text, 'nodejs_heap_size_used_bytes')), heapTotalMb: mb(metricFrom(text, 'nodejs_heap_size_total_bytes')) };
}

/** Runs `fn` every `ms` until stopped, counting failures (a side operation never throws into the run). */
export function every(ms: number, fn: () => Promise<void>): { stop(): void; ok: number; failed: string[] } {
  const state = { ok: 0, failed: [] as string[], stop: () => clearInterval(timer) };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    fn().then(
      () => void state.ok++,
      (err: unknown) => void state.failed.push((err as Error).message),
    ).finally(() => (busy = false));
  }, ms);
  return state;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
