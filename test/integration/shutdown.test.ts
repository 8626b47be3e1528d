import { create, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCheckClient, httpCheckRequest } from '../../src/extauthz/client.js';
import { AUTHORIZATION_CHECK_PATH } from '../../src/extauthz/service.js';
import { CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { Serving } from '../../src/grpc/health.js';
import { checkHealth } from '../../src/grpc/health_client.js';
import { systemClock } from '../../src/lib/clock.js';
import { loadDevIssuer } from '../../src/tokens/index.js';
import { BIN, connectionRefused, runCli, spawnServer, type ServerProcess } from '../helpers/cli_server.js';
import { heldGrpcCheck, heldHttpPost } from '../helpers/in_flight.js';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

const FORM = 'application/x-www-form-urlencoded';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setup {
  config: string;
  db: string;
  env: Record<string, string>;
  keyFile: string;
  /** Basic credentials of a client_credentials client registered before start. */
  basic: string;
}

/** A config in its own folder (SQLite store, dev issuer key), and a confidential client made with the CLI. */
function setup(lifecycle: { drain_seconds: number; shutdown_timeout_seconds: number }): Setup {
  const dir = tempDir('pc-shutdown');
  const db = join(dir, 'portcullis.db');
  const keyFile = join(dir, 'dev-key.json');
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'grpc: { address: "127.0.0.1:0", warmup_checks: 20 }',
      'admin: { address: "127.0.0.1:0" }',
      'http: { address: "127.0.0.1:0" }',
      `policies: { dir: ${EXAMPLE_POLICIES}, watch: false }`,
      `store: { sqlite_file: ${db} }`,
      `dev_issuer: { key_file: ${keyFile} }`,
      `lifecycle: { drain_seconds: ${lifecycle.drain_seconds}, shutdown_timeout_seconds: ${lifecycle.shutdown_timeout_seconds} }`,
      '',
    ].join('\n'),
  );
  const env = { PORTCULLIS_KEK: randomBytes(32).toString('base64url') };
  const added = runCli(['clients', 'add', 'svc', '--grant', 'client_credentials', '--role', 'service', '--scope', 'read', '--config', config], env);
  if (added.status !== 0) throw new Error(`clients add failed: ${added.stderr}`);
  const { client_secret: secret } = JSON.parse(added.stdout) as { client_secret: string };
  return { config, db, env, keyFile, basic: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}` };
}

/** GET over a fresh HTTP/1.1 connection: status and the Connection header. */
function get(base: string, path: string): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function pollUntil<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number): Promise<{ value: T; elapsedMs: number }> {
  const start = performance.now();
  for (;;) {
    const value = await probe().catch((err: unknown) => err as T);
    if (done(value) || performance.now() - start > timeoutMs) return { value, elapsedMs: performance.now() - start };
    await sleep(20);
  }
}

let running: ServerProcess | undefined;
afterEach(() => running?.kill());

beforeAll(() => {
  if (!existsSync(new URL('../../dist/cli/main.js', import.meta.url))) throw new Error('dist/ is missing: run npm run build (npm test does)');
});

describe('graceful shutdown of portcullis serve', { timeout: 120_000 }, () => {
  it('on SIGTERM under load: not ready at once, every request answered through the drain window, in-flight requests finish after the listeners close, exit 0, store checkpointed', async () => {
    const DRAIN_MS = 2000;
    const TIMEOUT_MS = 5000;
    const s = setup({ drain_seconds: DRAIN_MS / 1000, shutdown_timeout_seconds: TIMEOUT_MS / 1000 });
    const server = (running = await spawnServer(s.config, s.env));
    const http = `http://${server.http}`;
    const dev = await loadDevIssuer({ issuer: 'urn:portcullis:dev', audience: 'portcullis', keyFile: s.keyFile, clock: systemClock });
    const check = httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${await dev.mint({ sub: 'alice', roles: ['viewer'] })}` });
    const tokenRequest = { method: 'POST', headers: { 'content-type': FORM, authorization: s.basic }, body: 'grant_type=client_credentials&scope=read' };

    // Held half-sent from before the signal until after the listeners have closed.
    const heldCheck = heldGrpcCheck(server.grpc, AUTHORIZATION_CHECK_PATH, toBinary(CheckRequestSchema, create(CheckRequestSchema, check)));
    const heldToken = heldHttpPost(http, '/oauth2/token', tokenRequest.headers, tokenRequest.body);
    await Promise.all([heldCheck.started, heldToken.started]);

    // Bounded load: 6 gRPC Check loops and 2 token-request loops, until told to stop or 60k requests
    // (the stop comes first on any machine this runs on: ~4k req/s here, so ~10k requests).
    const outcomes: Array<{ kind: 'check' | 'token'; ok: boolean; at: number; detail?: string }> = [];
    let stop = false;
    let sent = 0;
    const client = createCheckClient(server.grpc);
    const loop = async (kind: 'check' | 'token', once: () => Promise<string | undefined>) => {
      while (!stop && sent++ < 60_000) {
        const detail = await once().catch((err: Error) => `${err.message}`);
        outcomes.push({ kind, ok: detail === undefined, at: performance.now(), ...(detail ? { detail } : {}) });
      }
    };
    const checkOnce = async () => ((await client.check(check)).httpResponse.case === 'okResponse' ? undefined : 'not allowed');
    const tokenOnce = async () => {
      const res = await fetch(`${http}/oauth2/token`, tokenRequest);
      const body = (await res.json()) as { access_token?: string };
      return res.status === 200 && body.access_token ? undefined : `HTTP ${res.status}`;
    };
    const loops = [...Array.from({ length: 6 }, () => loop('check', checkOnce)), ...Array.from({ length: 2 }, () => loop('token', tokenOnce))];
    await sleep(700);

    const signalAt = performance.now();
    server.child.kill('SIGTERM');
    // The first answers after the signal (sent once the server has logged it) already say not ready,
    // over new connections: the listeners are still accepting.
    expect((await pollUntil(async () => server.logs.some((l) => l.msg === 'shutting down: not ready, draining'), Boolean, 1500)).value).toBe(true);
    const [health, ready, adminReady] = await Promise.all([checkHealth(server.grpc), get(http, '/ready'), get(`http://${server.admin}`, '/ready')]);
    expect(health).toBe(Serving.NOT_SERVING);
    expect(ready).toEqual({ status: 503, connection: 'close' });
    expect(adminReady.status).toBe(503);

    // Keep the load on until 1.5 s into the 2 s drain window.
    await sleep(Math.max(0, signalAt + DRAIN_MS - 500 - performance.now()));
    stop = true;
    await Promise.all(loops);
    client.close();
    const failed = outcomes.filter((o) => !o.ok);
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([]);
    expect(sent).toBeLessThan(60_000);
    const afterSignal = (kind: string) => outcomes.filter((o) => o.kind === kind && o.at > signalAt + 100).length;
    expect(afterSignal('check')).toBeGreaterThan(50);
    expect(afterSignal('token')).toBeGreaterThan(5);

    // The listeners close once the drain window is over; the held requests are still being served.
    const closed = await pollUntil(() => connectionRefused(server.http), Boolean, DRAIN_MS + 3000);
    expect(closed.value).toBe(true);
    expect(await connectionRefused(server.grpc)).toBe(true);
    expect(performance.now() - signalAt).toBeGreaterThanOrEqual(DRAIN_MS - 50);
    expect(server.child.exitCode).toBe(null);
    const [grpcAnswer, tokenAnswer] = await Promise.all([heldCheck.finish(), heldToken.finish()]);
    expect(grpcAnswer.grpcStatus).toBe('0');
    expect(grpcAnswer.response?.httpResponse.case).toBe('okResponse');
    expect(tokenAnswer.status).toBe(200);
    expect(JSON.parse(tokenAnswer.body)).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer' });

    const exit = await server.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - signalAt).toBeLessThan(DRAIN_MS + TIMEOUT_MS);
    expect(server.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down: not ready, draining', 'drain window over: listeners stop accepting', 'portcullis stopped']));

    // Closed cleanly: the WAL was checkpointed into the database and removed; every token answered 200 has its audit row.
    expect(existsSync(`${s.db}-wal`)).toBe(false);
    const db = new Database(s.db, { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const issued = db.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'token.issued' AND outcome = 'success' AND client_id = 'svc'").get() as { n: number };
      expect(issued.n).toBe(outcomes.filter((o) => o.kind === 'token' && o.ok).length + 1);
    } finally {
      db.close();
    }
  });

  it('exits at once with 128 + the signal number on a second signal, and the store opens cleanly afterwards', async () => {
    const s = setup({ drain_seconds: 60, shutdown_timeout_seconds: 10 });
    const server = (running = await spawnServer(s.config, s.env));
    server.child.kill('SIGTERM');
    expect((await pollUntil(() => checkHealth(server.grpc), (v) => v === Serving.NOT_SERVING, 1500)).value).toBe(Serving.NOT_SERVING);
    const secondAt = performance.now();
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    expect(exit.code).toBe(143);
    expect(exit.at - secondAt).toBeLessThan(1500);
    expect(server.stderr()).toContain('second SIGTERM, exiting at once');
    const db = new Database(s.db);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect((db.prepare("SELECT count(*) AS n FROM clients WHERE client_id = 'svc'").get() as { n: number }).n).toBe(1);
    } finally {
      db.close();
    }
  });

  it('cuts requests still in flight after lifecycle.shutdown_timeout_seconds and exits 1', async () => {
    const s = setup({ drain_seconds: 0, shutdown_timeout_seconds: 1 });
    const server = (running = await spawnServer(s.config, s.env));
    const held = heldHttpPost(`http://${server.http}`, '/oauth2/token', { 'content-type': FORM, authorization: s.basic }, 'grant_type=client_credentials');
    await held.started;
    // With no drain window the listeners close at once: give the server time to read the request's
    // headers off the loopback socket, so it is in flight (not an idle connection) when the signal comes.
    await sleep(250);
    const signalAt = performance.now();
    server.child.kill('SIGINT');
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(exit.at - signalAt).toBeGreaterThanOrEqual(950);
    expect(exit.at - signalAt).toBeLessThan(4000);
    expect(server.logs.find((l) => l.msg === 'requests still in flight after the shutdown timeout were cut')).toBeDefined();
    await expect(held.finish()).rejects.toThrow();
    expect(existsSync(`${s.db}-wal`)).toBe(false);
  });

  it('stops on SIGTERM when nobody reads its output any more (stdout and stderr a broken pipe)', async () => {
    const s = setup({ drain_seconds: 0.5, shutdown_timeout_seconds: 2 });
    const child = spawn(process.execPath, [BIN, 'serve', '--config', s.config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.env } });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not serving in 45 s: ${out}`)), 45_000);
        child.stdout!.on('data', (b: Buffer) => (out += String(b)).includes('portcullis serving') && (clearTimeout(timer), resolve()));
      });
      // The reader goes away: every later log line and message meets EPIPE.
      child.stdout!.destroy();
      child.stderr!.destroy();
      const signalAt = performance.now();
      child.kill('SIGTERM');
      const exit = await Promise.race([exited, sleep(10_000).then(() => 'still running' as const)]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(performance.now() - signalAt).toBeLessThan(5_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
