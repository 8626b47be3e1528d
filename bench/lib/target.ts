import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { scrapeGcTotals, type GcTotals } from './gc_stats.js';
import { cpuSeconds, mainThreadCpuSeconds, overTree, peakRssMb } from './process_stats.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface Target {
  name: string;
  address: string;
  pid: number;
  /** Folder for this target's files (config, keys, policies); removed on stop. */
  dir: string;
  /** Portcullis only: its public HTTP listener (token module), admin listener, store file and key-encryption key. */
  http?: string;
  admin?: string;
  sqliteFile?: string;
  kek?: string;
  cpuSeconds(): number;
  /** Node targets: CPU seconds of the main threads (the event loops) alone, a part of cpuSeconds. */
  loopCpuSeconds?(): number;
  peakRssMb(): number;
  /** Portcullis targets: GC pauses and mark-compacts so far, from the admin listener's metrics. */
  gcTotals?(): Promise<GcTotals | undefined>;
  /** Launched targets: why the process ended (exit code or signal, with the tail of its output) if it has, else undefined. */
  exited?(): string | undefined;
  stop(): Promise<void>;
}

/**
 * The runtime settings the container image sets (Dockerfile `ENV`; a test keeps the two equal), so
 * Portcullis is measured as it is shipped. The floor and the peers run with Node's defaults.
 */
export const IMAGE_RUNTIME_ENV: Readonly<Record<string, string>> = { NODE_OPTIONS: '--max-semi-space-size=8', MALLOC_ARENA_MAX: '2' };

/** The image's settings under what the bench's own environment sets (a later V8 flag wins). */
function runtimeEnv(): Record<string, string> {
  const own = process.env.NODE_OPTIONS;
  return { ...IMAGE_RUNTIME_ENV, ...(own ? { NODE_OPTIONS: `${IMAGE_RUNTIME_ENV.NODE_OPTIONS} ${own}` } : {}), ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}) };
}

export interface PortcullisOptions {
  /** Reuse this folder, store and key-encryption key (a restart); the folder is then kept on stop. */
  reuse?: { dir: string; kek: string };
  /** Fixed listen addresses instead of free ports (a restart that clients reconnect to). */
  addresses?: { grpc: string; http: string; admin: string };
  /** Keep the folder on stop (it will be reused). */
  keepFiles?: boolean;
}

/** The built Portcullis (`dist/`), serving with the given YAML config (its listen addresses are forced to free ports). */
export async function startPortcullis(configYaml: (dir: string) => string, options: PortcullisOptions = {}): Promise<Target> {
  const dir = options.reuse?.dir ?? mkdtempSync(join(tmpdir(), 'pc-bench-'));
  const file = join(dir, 'bench.yaml');
  // No drain window on stop unless the config asks for one (the soak and chaos runs measure shutdown).
  const yaml = configYaml(dir);
  writeFileSync(file, /^lifecycle:/m.test(yaml) ? yaml : `${yaml}\nlifecycle:\n  drain_seconds: 0\n`);
  const sqliteFile = join(dir, 'portcullis.db');
  const kek = options.reuse?.kek ?? randomBytes(32).toString('base64url');
  const a = options.addresses;
  const target = await launch('portcullis', dir, [join(ROOT, 'dist/cli/main.js'), 'serve', '--config', file], 'portcullis serving', {
    ...runtimeEnv(),
    PORTCULLIS_GRPC_ADDRESS: a?.grpc ?? '127.0.0.1:0',
    PORTCULLIS_ADMIN_ADDRESS: a?.admin ?? '127.0.0.1:0',
    PORTCULLIS_HTTP_ADDRESS: a?.http ?? '127.0.0.1:0',
    PORTCULLIS_SQLITE_FILE: sqliteFile,
    PORTCULLIS_KEK: kek,
  }, !options.reuse && !options.keepFiles);
  return { ...target, sqliteFile, kek };
}

/** The node-oidc-provider peer (bench/servers/oidc_provider.ts) with client `bench`: `http` is its issuer's host:port. */
export async function startOidcProviderPeer(clientSecret: string): Promise<Target> {
  const file = await compiledServer('oidc_provider');
  return launch('oidc-provider', mkdtempSync(join(tmpdir(), 'pc-bench-')), [file], 'oidc-provider serving', { OIDC_PEER_CLIENT_SECRET: clientSecret });
}

/** The no-op floor server. */
export async function startFloor(): Promise<Target> {
  const file = await compiledServer('floor');
  return launch('floor', mkdtempSync(join(tmpdir(), 'pc-bench-')), [file], 'floor serving', {});
}

const compiled = new Map<string, Promise<string>>();

/**
 * bench/servers/<name>.ts as one JavaScript file that plain `node` runs (built once per bench run into
 * bench/.build/, beside node_modules so its packages resolve). Run through tsx instead, a server would
 * carry tsx's module-hooks thread and its own V8 isolate: ~40 MB more RSS at idle, counted in the peak
 * RSS it is compared by, and CPU that Portcullis, run from dist/, does not spend.
 */
export function compiledServer(name: 'floor' | 'oidc_provider'): Promise<string> {
  let file = compiled.get(name);
  if (!file) {
    const outfile = join(ROOT, 'bench/.build', `${name}.mjs`);
    file = build({ entryPoints: [join(ROOT, 'bench/servers', `${name}.ts`)], outfile, write: false, bundle: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' }).then(({ outputFiles }) => {
      // Written aside and renamed: bench runs in parallel (the test suite's) never read a half-written file.
      mkdirSync(dirname(outfile), { recursive: true });
      const partial = `${outfile}.${process.pid}.tmp`;
      try {
        writeFileSync(partial, outputFiles[0]!.contents);
        renameSync(partial, outfile);
      } catch (err) {
        rmSync(partial, { force: true });
        throw err;
      }
      return outfile;
    });
    compiled.set(name, file);
    // A failed build is not kept: the next start tries again.
    file.catch(() => compiled.delete(name));
  }
  return file;
}

/** Extra Node flags for every server the bench starts, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (docs/performance.md). */
const SERVER_NODE_ARGS = (process.env.PORTCULLIS_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

async function launch(name: string, dir: string, args: string[], ready: string, env: Record<string, string>, removeDir = true): Promise<Target> {
  const child: ChildProcess = spawn(process.execPath, [...SERVER_NODE_ARGS, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += String(b)).length > 20_000 && (stderr = stderr.slice(-10_000)));
  /** The last lines the server logged, for the report when it dies under load. */
  const lastLines: string[] = [];
  let ended: string | undefined;
  child.once('exit', (code, signal) => (ended = signal ? `killed by ${signal}` : `exit code ${code}`));
  let http: string | undefined;
  let admin: string | undefined;
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      if (removeDir) rmSync(dir, { recursive: true, force: true });
      reject(new Error(`${name} did not start in 60 s: ${stderr}`));
    }, 60_000);
    let buffered = '';
    child.stdout!.on('data', (b: Buffer) => {
      buffered += String(b);
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      lastLines.push(...lines.filter(Boolean));
      lastLines.splice(0, Math.max(0, lastLines.length - 5));
      for (const line of lines) {
        try {
          const l = JSON.parse(line) as { msg?: string; grpc?: string; http?: string; admin?: string };
          if (l.msg === ready && l.grpc) {
            http = l.http;
            admin = l.admin;
            clearTimeout(timer);
            resolve(l.grpc);
          }
        } catch {
          /* not a JSON line */
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${stderr}`)));
  });
  const pid = child.pid!;
  return {
    name,
    address,
    ...(http ? { http } : {}),
    ...(admin ? { admin } : {}),
    pid,
    dir,
    // With cluster workers (workers: N) the process and its workers together.
    cpuSeconds: () => overTree(pid, cpuSeconds),
    loopCpuSeconds: () => overTree(pid, mainThreadCpuSeconds),
    peakRssMb: () => overTree(pid, peakRssMb),
    ...(admin ? { gcTotals: () => scrapeGcTotals(admin!) } : {}),
    exited: () => (ended === undefined ? undefined : `${ended}; stderr: ${stderr.slice(-2000).trim() || '(empty)'}; last log lines: ${lastLines.join(' | ').slice(-2000) || '(none)'}`),
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          if (removeDir) rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        // Already gone (exited, or killed by a signal: then exitCode stays null): no 'exit' will come.
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}
