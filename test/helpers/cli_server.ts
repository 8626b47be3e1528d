import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Socket, createServer } from 'node:net';

/** The built entry point users run (`npm test` builds it first). */
export const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface ServerProcess {
  child: ChildProcess;
  /** Bound addresses, from the "portcullis serving" log line. */
  grpc: string;
  http: string;
  admin: string;
  /** JSON log lines so far (stdout). */
  logs: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves when the process ends: exit code, signal, and when (performance.now()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGKILL if still running (afterAll safety net). */
  kill(): void;
}

/** Runs `portcullis serve --config file` and resolves once it logs "portcullis serving". */
export async function spawnServer(configFile: string, env: Record<string, string> = {}, extraNodeArgs: string[] = []): Promise<ServerProcess> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build (npm test does)`);
  const child = spawn(process.execPath, [...extraNodeArgs, BIN, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += String(b)));
  // The time is taken at 'exit'; the promise resolves at 'close', once stdout and stderr are read to the
  // end, or 2 s after 'exit' if something else (a cluster worker) still holds the pipes.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => {
      const result = { code, signal, at: performance.now() };
      const timer = setTimeout(() => resolve(result), 2_000);
      child.once('close', () => (clearTimeout(timer), resolve(result)));
    });
  });
  let partial = '';
  const serving = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 45 s: ${stderr}`)), 45_000);
    void exited.then(({ code }) => reject(new Error(`server exited with ${code} before serving: ${stderr}`)));
    child.stdout!.on('data', (b: Buffer) => {
      const lines = (partial + String(b)).split('\n');
      partial = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'portcullis serving') {
          clearTimeout(timer);
          resolve(entry);
        }
      }
    });
  });
  const entry = await serving;
  return {
    child,
    grpc: String(entry.grpc),
    http: String(entry.http),
    admin: String(entry.admin),
    logs,
    stderr: () => stderr,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Runs a CLI command to completion. */
export function runCli(args: string[], env: Record<string, string> = {}, input?: string, as?: { uid: number; gid: number; cwd: string }) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000, ...(input === undefined ? {} : { input }), ...as });
}

/** A loopback port free right now (for tests that must know a port before the server logs it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether a new TCP connection to `address` is refused (the listener is closed). */
export function connectionRefused(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    socket.connect(Number(address.slice(i + 1)), address.slice(0, i));
  });
}
