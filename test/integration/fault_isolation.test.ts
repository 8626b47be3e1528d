import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createAppClient } from '../../src/appapi/client.js';
import { createAppApiService } from '../../src/appapi/service.js';
import { createCheckClient, httpCheckRequest } from '../../src/extauthz/client.js';
import { createExtAuthzService } from '../../src/extauthz/service.js';
import { Serving } from '../../src/grpc/health.js';
import { checkHealth } from '../../src/grpc/health_client.js';
import { startGrpcServer, type GrpcListener } from '../../src/grpc/server.js';
import type { AppDecision } from '../../src/pipeline/app_check.js';
import type { Decision } from '../../src/pipeline/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { spawnServer, type ServerProcess } from '../helpers/cli_server.js';
import { EXAMPLE_POLICIES, metricValue } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

const INJECT = new URL('../helpers/inject_errors.mjs', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('one request that throws while its answer is rendered', () => {
  let listener: GrpcListener | undefined;
  afterAll(async () => listener?.close(1000));

  it('is answered INTERNAL, logged and counted (not an unhandled rejection with the call left hanging); the next call is answered normally', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write: (chunk, _e, done) => (logs.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()) });
    const logger = createLogger('error', sink);
    const metrics = createMetrics();
    // The render step reads principal.roles; a decision without them makes it throw (a bug upstream, say).
    let calls = 0;
    const allow = { allow: true, decisionId: 'd1', reasons: ['p'], policiesChecked: 1, errors: [], principal: { subject: 'alice', roles: ['viewer'] }, action: 'read', resourceType: 'Document' };
    const decide = async () => (++calls === 1 ? { ...allow, principal: { subject: 'alice' } } : allow) as unknown as Decision;
    const appCheck = async (): Promise<AppDecision[]> => (++calls === 3 ? [] : [{ allow: true, reasons: ['p'], errors: [], decisionId: 'a1', policiesChecked: 1 }]);
    const plan = async () => {
      throw new Error('unused');
    };
    listener = await startGrpcServer('127.0.0.1:0', [createExtAuthzService({ decide, metrics, logger }), createAppApiService({ check: appCheck, plan, metrics, logger })], { maxReceiveBytes: 1 << 20 });
    const address = `127.0.0.1:${listener.port}`;
    const envoy = createCheckClient(address);
    const app = createAppClient(address);
    try {
      const started = performance.now();
      const first = await envoy.check(httpCheckRequest('GET', '/documents/d1'), 5000).catch((err: ServiceError) => err);
      expect((first as ServiceError).code).toBe(Status.INTERNAL);
      expect((first as ServiceError).details).toBe('internal error');
      expect(performance.now() - started).toBeLessThan(2000);
      expect((await envoy.check(httpCheckRequest('GET', '/documents/d1'))).httpResponse.case).toBe('okResponse');

      const appResource = { principal: { kind: { case: 'entity' as const, value: { type: 'User', id: 'alice' } } }, action: 'read', resource: { type: 'Document', id: 'd1' } };
      const broken = await app.check(appResource).catch((err: ServiceError) => err);
      expect((broken as ServiceError).code).toBe(Status.INTERNAL);
      expect((await app.check(appResource)).decisionId).toBe('a1');

      expect(await metricValue(metrics, 'auth_authz_errors_total', { code: 'ERR_INTERNAL' })).toBe(2);
      expect(logs.filter((l) => l.msg === 'check failed' || l.msg === 'app check failed')).toHaveLength(2);
      expect(logs.map((l) => (l.err as { type?: string } | undefined)?.type)).toEqual(['TypeError', 'TypeError']);
    } finally {
      envoy.close();
      app.close();
    }
  });
});

/** A config in its own folder; `extra` YAML lines are appended. */
function configFile(extra: string[]): { file: string; db: string; keyFile: string } {
  const dir = tempDir('pc-faults');
  const db = join(dir, 'portcullis.db');
  const keyFile = join(dir, 'dev-key.json');
  const file = join(dir, 'config.yaml');
  writeFileSync(file, ['grpc: { address: "127.0.0.1:0", warmup_checks: 20 }', 'admin: { address: "127.0.0.1:0" }', 'http: { address: "127.0.0.1:0" }', `policies: { dir: ${EXAMPLE_POLICIES}, watch: false }`, `store: { sqlite_file: ${db} }`, ...extra, ''].join('\n'));
  return { file, db, keyFile };
}

const waitForLog = async (server: ServerProcess, msg: string, count = 1, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (server.logs.filter((l) => l.msg === msg).length < count && Date.now() < deadline) await sleep(20);
  return server.logs.filter((l) => l.msg === msg);
};

const metric = async (admin: string, line: string) => {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith(line))?.slice(line.length + 1));
};

describe('the process-level error policy of portcullis serve', { timeout: 120_000 }, () => {
  let running: ServerProcess | undefined;
  afterEach(() => running?.kill());

  it('logs and counts an unhandled promise rejection and keeps serving', async () => {
    const c = configFile(['lifecycle: { drain_seconds: 0 }']);
    const server = (running = await spawnServer(c.file, { PORTCULLIS_KEK: randomBytes(32).toString('base64url'), PC_INJECT: 'rejection' }, ['--import', INJECT]));
    // One at a time: signals sent back to back coalesce into one.
    let logged: Array<Record<string, unknown>> = [];
    for (let i = 1; i <= 3; i++) {
      server.child.kill('SIGUSR2');
      logged = await waitForLog(server, 'unhandled promise rejection (the process keeps serving)', i);
    }
    expect(logged).toHaveLength(3);
    expect(logged[0]).toMatchObject({ level: 50, err: { message: 'injected unhandled rejection' } });
    expect(await metric(server.admin, 'auth_unhandled_errors_total{kind="rejection"}')).toBe(3);

    expect(await checkHealth(server.grpc)).toBe(Serving.SERVING);
    const client = createCheckClient(server.grpc);
    const res = await client.check(httpCheckRequest('GET', '/public/index.html'));
    client.close();
    expect(res.httpResponse.case).toBe('okResponse');
    expect(server.child.exitCode).toBe(null);

    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  });

  it('drains and exits 1 on an uncaught exception', async () => {
    const c = configFile(['lifecycle: { drain_seconds: 3, shutdown_timeout_seconds: 2 }']);
    const server = (running = await spawnServer(c.file, { PORTCULLIS_KEK: randomBytes(32).toString('base64url'), PC_INJECT: 'exception' }, ['--import', INJECT]));
    server.child.kill('SIGUSR2');
    const [fatal] = await waitForLog(server, 'uncaught exception: draining and exiting 1');
    expect(fatal).toMatchObject({ level: 60, err: { message: 'injected uncaught exception' } });
    // Still answering during the drain window, as not serving.
    expect(await checkHealth(server.grpc)).toBe(Serving.NOT_SERVING);
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(server.logs.at(-1)).toMatchObject({ msg: 'portcullis stopped', exit_code: 1 });
  });
});

describe('a store gone for longer than lifecycle.store_unavailable_exit_seconds', { timeout: 120_000 }, () => {
  let running: ServerProcess | undefined;
  afterEach(() => running?.kill());

  it('in production: /health turns 503, then the process drains and exits 1 so the orchestrator restarts it', async () => {
    const c = configFile(['mode: production', 'dev_issuer: { enabled: false }', 'token_module: { issuer: "https://auth.example.test" }', 'lifecycle: { drain_seconds: 0.5, shutdown_timeout_seconds: 2, store_unavailable_exit_seconds: 2 }']);
    const server = (running = await spawnServer(c.file, { PORTCULLIS_KEK: randomBytes(32).toString('base64url') }));
    expect((await fetch(`http://${server.http}/health`)).status).toBe(200);
    // The volume under the store goes away (here: the database file is deleted under the open handle).
    rmSync(c.db);
    const goneAt = performance.now();
    const health = await fetch(`http://${server.http}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'unhealthy', checks: { store: false } });
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(exit.at - goneAt).toBeGreaterThanOrEqual(2000);
    expect(exit.at - goneAt).toBeLessThan(8000);
    const fatal = server.logs.find((l) => l.level === 60);
    expect(String(fatal?.msg)).toMatch(/^store unavailable for \d+ s \(lifecycle\.store_unavailable_exit_seconds: 2\): SQLite store .* is no longer on disk/);
    expect(server.logs.map((l) => l.msg)).toContain('store unavailable');
  });

  it('in development: /health turns 503 and auth_store_up 0, and the process keeps serving Checks', async () => {
    const c = configFile(['lifecycle: { drain_seconds: 0, store_unavailable_exit_seconds: 1 }']);
    const server = (running = await spawnServer(c.file, { PORTCULLIS_KEK: randomBytes(32).toString('base64url') }));
    expect(await metric(server.admin, 'auth_store_up')).toBe(1);
    rmSync(c.db);
    expect((await fetch(`http://${server.http}/health`)).status).toBe(503);
    // The watchdog pings every 5 s outside production; wait for it to see the store gone, then past the limit.
    const deadline = Date.now() + 10_000;
    while ((await metric(server.admin, 'auth_store_up')) !== 0 && Date.now() < deadline) await sleep(100);
    expect(await metric(server.admin, 'auth_store_up')).toBe(0);
    await sleep(1500);
    expect(server.child.exitCode).toBe(null);
    expect(await checkHealth(server.grpc)).toBe(Serving.SERVING);
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  });
});
