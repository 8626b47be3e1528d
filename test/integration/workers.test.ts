import { randomBytes } from 'node:crypto';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTokenModule } from '../../src/cli/token_module.js';
import { createCheckClient, httpCheckRequest, type CheckClient } from '../../src/extauthz/client.js';
import { addClient } from '../../src/issuer/clients.js';
import { spawnServer, type ServerProcess } from '../helpers/cli_server.js';
import { seen } from '../helpers/corpus.js';
import { makeDpopKey } from '../helpers/dpop.js';
import { startOtlpHttpReceiver, type OtlpReceiver } from '../helpers/otlp_receiver.js';
import { scrape } from '../helpers/prom_text.js';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { deleteRedisKeys } from '../helpers/redis.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * `workers: 2`: the built CLI as users run it, its gRPC listener served by two cluster workers on
 * the embedded defaults (SQLite, memory cache). Four clients each hold a connection of their own;
 * the primary hands connections to the workers in turn, so every assertion made on all four is
 * made on both workers (the workers' own log lines show which served a connection).
 */

const REDIS_URL = process.env.PORTCULLIS_TEST_REDIS_URL;
if (!REDIS_URL) console.warn('PORTCULLIS_TEST_REDIS_URL not set: the workers-on-Redis test is skipped');

const ISSUER = 'http://auth.workers.test';
const ADMIN_KEY = 'workers-admin-key-0123456789';
const HOST = 'api.example.com';
const DOC_URL = `http://${HOST}/documents/d1`;
const CONNECTIONS = 4;

interface WorkerRow {
  slot: number;
  pid: number;
  state: string;
  restarts: number;
}

let proc: ServerProcess;
let clients: CheckClient[] = [];
let policiesDir = '';
let svcSecret = '';

const admin = (path: string, method = 'GET') => fetch(`http://${proc.admin}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
const workers = async () => ((await (await admin('/admin/workers')).json()) as { workers: WorkerRow[] }).workers;
const metric = (name: string, labels: Record<string, string> = {}) => scrape(proc.admin, name, labels);
const check = async (client: CheckClient, authorization: string, proof?: string, requestId?: string) =>
  seen(await client.check(httpCheckRequest('GET', '/documents/d1', { authorization, ...(proof ? { dpop: proof } : {}) }, { host: HOST, ...(requestId ? { id: requestId } : {}) })));

async function token(dpop?: string): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`http://${proc.http}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}`, ...(dpop ? { dpop } : {}) },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'documents' }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** Polls until `probe` holds, for at most `limitMs`. */
async function eventually(limitMs: number, probe: () => Promise<boolean>): Promise<void> {
  const start = performance.now();
  while (!(await probe())) {
    if (performance.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
    await sleep(25);
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Starts `portcullis serve` with `workers: 2` and opens CONNECTIONS clients, one after another (connection k goes to worker k mod 2). */
async function startWorkers(extra: Record<string, unknown>): Promise<{ proc: ServerProcess; clients: CheckClient[] }> {
  const dir = tempDir('pc-workers');
  policiesDir = join(dir, 'policies');
  cpSync(EXAMPLE_POLICIES, policiesDir, { recursive: true });
  const file = join(dir, 'workers.yaml');
  const config = {
    workers: 2,
    dev_issuer: { enabled: false },
    observability: { logging: { level: 'info' } },
    grpc: { address: '127.0.0.1:0', warmup_checks: 10 },
    http: { address: '127.0.0.1:0' },
    admin: { address: '127.0.0.1:0', api_key: ADMIN_KEY },
    policies: { dir: policiesDir, watch: false },
    store: { driver: 'sqlite', sqlite_file: join(dir, 'portcullis.db') },
    token_module: { issuer: ISSUER, kek: randomBytes(32).toString('base64url') },
    lifecycle: { drain_seconds: 0, shutdown_timeout_seconds: 2 },
    ...extra,
  };
  writeFileSync(file, JSON.stringify(config));
  await withTokenModule(file, async ({ ctx }) => {
    svcSecret = (await addClient(ctx, { clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'], redirectUris: [], firstParty: false })).secret!;
  });
  const started = await spawnServer(file);
  const opened: CheckClient[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const client = createCheckClient(started.grpc, { ownConnection: true });
    await check(client, 'Bearer not-a-token');
    opened.push(client);
  }
  return { proc: started, clients: opened };
}

async function stop(p: ServerProcess | undefined, cs: CheckClient[]) {
  for (const c of cs) c.close();
  if (p && p.child.exitCode === null) {
    p.child.kill('SIGTERM');
    await Promise.race([p.exited, sleep(8_000).then(() => p.kill())]);
  }
}

describe('workers: 2 (cluster workers serving gRPC)', () => {
  beforeAll(async () => {
    ({ proc, clients } = await startWorkers({}));
  }, 60_000);

  afterAll(() => stop(proc, clients), 15_000);

  it('runs two workers besides the primary, each serving a share of the connections; ready counts them', async () => {
    const rows = await workers();
    expect(rows.map((w) => ({ slot: w.slot, state: w.state, restarts: w.restarts }))).toEqual([
      { slot: 1, state: 'ready', restarts: 0 },
      { slot: 2, state: 'ready', restarts: 0 },
    ]);
    const pids = rows.map((w) => w.pid);
    expect(new Set([...pids, proc.child.pid]).size).toBe(3);
    const ready = await fetch(`http://${proc.http}/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, unknown> }).checks).toMatchObject({ workers: true });
    expect(await metric('auth_workers', { state: 'ready' })).toBe(2);
    // Each connection's denial was logged by the worker that served it: both served some.
    const servedBy = async (client: CheckClient) => {
      const id = `conn-${randomBytes(6).toString('hex')}`;
      expect((await check(client, 'Bearer not-a-token', undefined, id)).status).toBe(401);
      let line: Record<string, unknown> | undefined;
      await eventually(2_000, async () => (line = proc.logs.find((l) => l.request_id === id && l.msg === 'denied')) !== undefined);
      return line!.worker;
    };
    const slots = [];
    for (const c of clients) slots.push(await servedBy(c));
    expect(new Set(slots)).toEqual(new Set([1, 2]));
  });

  it("merges the workers' decision metrics into the primary's /metrics", async () => {
    const issued = await token();
    expect(issued.status).toBe(200);
    const before = await metric('auth_authz_decisions_total', { permitted: 'true', source: 'envoy' });
    for (const c of clients) expect((await check(c, `Bearer ${issued.body.access_token}`)).status).toBe(200);
    expect(await metric('auth_authz_decisions_total', { permitted: 'true', source: 'envoy' })).toBe(before + CONNECTIONS);
    expect(await metric('auth_authz_latency_seconds_count', { source: 'envoy' })).toBeGreaterThanOrEqual(before + CONNECTIONS);
  });

  it('refuses a DPoP proof replayed on another connection (the replay cache is shared through the primary)', async () => {
    const key = await makeDpopKey();
    const issued = await token(await key.proof('POST', `${ISSUER}/oauth2/token`));
    expect(issued).toMatchObject({ status: 200, body: { token_type: 'DPoP' } });
    const bound = issued.body.access_token!;
    const proof = await key.proof('GET', DOC_URL, { accessToken: bound });
    const replaysBefore = await metric('auth_dpop_proofs_rejected_total', { reason: 'replay' });
    expect((await check(clients[0]!, `DPoP ${bound}`, proof)).status).toBe(200);
    // Connections 1..3 include the other worker: each refuses the proof as a replay.
    for (const c of clients.slice(1)) expect((await check(c, `DPoP ${bound}`, proof)).status).toBe(401);
    expect(await metric('auth_dpop_proofs_rejected_total', { reason: 'replay' })).toBe(replaysBefore + CONNECTIONS - 1);
    for (const c of clients) expect((await check(c, `DPoP ${bound}`, await key.proof('GET', DOC_URL, { accessToken: bound }))).status).toBe(200);
  });

  it('an admin policy reload answers once every worker has loaded the new set, and every connection decides by it', async () => {
    const viewer = (await token()).body.access_token!;
    for (const c of clients) expect((await check(c, `Bearer ${viewer}`)).status).toBe(200);
    writeFileSync(join(policiesDir, 'freeze.cedar'), '@id("freeze-reads")\nforbid (principal, action == Action::"read", resource);\n');
    try {
      const res = await admin('/admin/policies/reload', 'POST');
      expect(res.status).toBe(200);
      const body = (await res.json()) as { revision: string; workers: Array<{ slot: number; ok: boolean; revision: string }> };
      expect(body.workers.sort((x, y) => x.slot - y.slot)).toEqual([
        { slot: 1, ok: true, revision: body.revision },
        { slot: 2, ok: true, revision: body.revision },
      ]);
      for (const c of clients) expect((await check(c, `Bearer ${viewer}`)).status).toBe(403);
      // A broken file is refused by the primary: no worker loads it, the last good set keeps serving.
      writeFileSync(join(policiesDir, 'broken.cedar'), 'permit (principal, action, resource');
      expect((await admin('/admin/policies/reload', 'POST')).status).toBe(422);
      for (const c of clients) expect((await check(c, `Bearer ${viewer}`)).status).toBe(403);
    } finally {
      rmSync(join(policiesDir, 'freeze.cedar'));
      rmSync(join(policiesDir, 'broken.cedar'), { force: true });
      expect((await admin('/admin/policies/reload', 'POST')).status).toBe(200);
    }
    for (const c of clients) expect((await check(c, `Bearer ${viewer}`)).status).toBe(200);
  });

  it('a signing key rotated on the primary is trusted by every worker at once; a revoked token is refused by every worker', async () => {
    const oldKid = decodeProtectedHeader((await token()).body.access_token!).kid;
    const rotate = await admin('/admin/keys/rotate?immediate=true', 'POST');
    expect(rotate.status).toBe(200);
    const { rotated } = (await rotate.json()) as { rotated: string };
    expect(rotated).not.toBe(oldKid);
    const signed = (await token()).body.access_token!;
    expect(decodeProtectedHeader(signed).kid).toBe(rotated);
    for (const c of clients) expect((await check(c, `Bearer ${signed}`)).status).toBe(200);

    const revoke = await fetch(`http://${proc.http}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: signed }).toString(),
    });
    expect(revoke.status).toBe(200);
    // The workers hold the revocation within the IPC round trip.
    await eventually(1_000, async () => {
      const statuses = await Promise.all(clients.map(async (c) => (await check(c, `Bearer ${signed}`)).status));
      return statuses.every((s) => s === 401);
    });
  });

  it('starts a worker again when one dies; the others keep serving meanwhile', async () => {
    const before = await workers();
    const victim = before.find((w) => w.slot === 1)!;
    const restartsBefore = await metric('auth_worker_restarts_total');
    process.kill(victim.pid, 'SIGKILL');
    // Not ready from the exit until the replacement serves (a warm-up takes over a second).
    await eventually(2_000, async () => (await fetch(`http://${proc.http}/ready`)).status === 503);
    await eventually(10_000, async () => {
      const row = (await workers()).find((w) => w.slot === 1);
      return row !== undefined && row.pid !== victim.pid && row.state === 'ready';
    });
    const after = (await workers()).find((w) => w.slot === 1)!;
    expect(after.restarts).toBe(1);
    expect(await metric('auth_worker_restarts_total')).toBe(restartsBefore + 1);
    expect((await fetch(`http://${proc.http}/ready`)).status).toBe(200);
    // New connections reach both workers again (the old ones to the dead worker are gone).
    const issued = (await token()).body.access_token!;
    const fresh = Array.from({ length: CONNECTIONS }, () => createCheckClient(proc.grpc, { ownConnection: true }));
    try {
      for (const c of fresh) expect((await check(c, `Bearer ${issued}`)).status).toBe(200);
    } finally {
      for (const c of fresh) c.close();
    }
  });

  it('SIGTERM to the primary stops the workers and exits 0', async () => {
    const pids = (await workers()).map((w) => w.pid);
    proc.child.kill('SIGTERM');
    const { code } = await proc.exited;
    expect(code).toBe(0);
    await eventually(3_000, async () => pids.every((pid) => !alive(pid)));
  });
});

describe.skipIf(!REDIS_URL)('workers: 2 with cache.driver redis', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  beforeAll(async () => {
    ({ proc, clients } = await startWorkers({ cache: { driver: 'redis', url: REDIS_URL, key_prefix: prefix } }));
  }, 60_000);
  afterAll(async () => {
    await stop(proc, clients);
    await deleteRedisKeys(REDIS_URL!, prefix);
  }, 15_000);

  it('each worker uses Redis for the replay cache: a proof used on one connection is a replay on every other, and its key is in Redis', async () => {
    const key = await makeDpopKey();
    const issued = await token(await key.proof('POST', `${ISSUER}/oauth2/token`));
    expect(issued).toMatchObject({ status: 200, body: { token_type: 'DPoP' } });
    const bound = issued.body.access_token!;
    const redis = new Redis(REDIS_URL!);
    try {
      const before = (await redis.keys(`${prefix}dpop:*`)).length;
      const proof = await key.proof('GET', DOC_URL, { accessToken: bound });
      expect((await check(clients[0]!, `DPoP ${bound}`, proof)).status).toBe(200);
      for (const c of clients.slice(1)) expect((await check(c, `DPoP ${bound}`, proof)).status).toBe(401);
      expect((await redis.keys(`${prefix}dpop:*`)).length).toBe(before + 1);
    } finally {
      redis.disconnect();
    }
    expect((await fetch(`http://${proc.http}/ready`)).status).toBe(200);
  });
});

describe('workers: 2 exporting traces, and the primary gone', () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpHttpReceiver();
    ({ proc, clients } = await startWorkers({ observability: { logging: { level: 'info' }, tracing: { enabled: true, endpoint: `${receiver.url}/v1/traces`, sample_rate: 1, export_interval_ms: 50 } } }));
  }, 60_000);
  afterAll(async () => {
    await stop(proc, clients);
    await receiver?.close();
  }, 15_000);

  it("exports each worker's decision spans itself, continuing the caller's trace", async () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const traceIds = clients.map((_, i) => `7ace00000000000000000000000000${String(i).padStart(2, '0')}`);
    for (const [i, c] of clients.entries()) {
      const res = await c.check(httpCheckRequest('GET', '/documents/d1', { authorization: 'Bearer not-a-token', traceparent: `00-${traceIds[i]}-7777777777777777-01` }, { host: HOST }));
      expect(seen(res).status).toBe(401);
    }
    const checkSpans = () => receiver.spans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)).filter((sp) => sp.name === 'auth.authz.check');
    // The set-up's first Check on each connection started traces of its own; ours are the four above.
    const ours = () => new Set(checkSpans().map((sp) => hex(sp.traceId)).filter((id) => traceIds.includes(id)));
    await expect.poll(() => ours().size, { timeout: 10_000 }).toBe(CONNECTIONS);
  });

  it('SIGKILL of the primary: its workers exit on their own', async () => {
    const pids = (await workers()).map((w) => w.pid);
    expect(pids).toHaveLength(2);
    proc.kill();
    await proc.exited;
    await eventually(5_000, async () => pids.every((pid) => !alive(pid)));
  });
});
