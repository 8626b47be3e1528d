import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Cache } from '../cache/index.js';
import type { Config } from '../config/index.js';
import { PortcullisError } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { answerCacheRequest } from './ipc_cache.js';
import { isProtocolMessage, type FromWorker, type MirroredIssuer, type MirroredKey, type ToWorker, type WorkerMetrics } from './messages.js';

export interface WorkerInfo {
  /** Slot 1..N: a restarted worker takes the slot of the one it replaces. */
  slot: number;
  pid: number | undefined;
  state: 'starting' | 'ready' | 'stopping';
  startedAt: string;
  /** Times this slot's worker was started again after it died. */
  restarts: number;
}

export interface WorkerPoolOptions {
  config: Readonly<Config>;
  count: number;
  /** The primary's cache, which workers reach over IPC when it is the memory one. */
  cache: Cache;
  /** The embedded token module as workers must trust it (read at each worker's start). */
  issuer: () => MirroredIssuer | undefined;
  /** Key of the decision log's subject hashes, so every worker hashes a subject the same way. */
  subjectKey: Buffer;
  logger: Logger;
  metrics: Metrics;
  /** Longest wait for a worker's first SERVING (warm-up included). */
  startTimeoutMs?: number;
}

export interface WorkerPool {
  /** The gRPC port the workers share. */
  port: number;
  info(): WorkerInfo[];
  readyCount(): number;
  keys(keys: MirroredKey[]): void;
  revoked(jtis: string[], full: boolean): void;
  /** Has every worker reload a policy set; resolves with the revisions they loaded (or their errors). */
  reloadPolicies(set: 'active' | 'shadow'): Promise<Array<{ slot: number; ok: boolean; revision?: string; error?: string }>>;
  /** The workers' metric snapshots (a worker that does not answer within `timeoutMs` is left out). */
  collectMetrics(timeoutMs?: number): Promise<WorkerMetrics[]>;
  drain(): void;
  /** Each worker stops accepting, lets calls in flight finish for up to `timeoutMs`, and exits; true when none was cut. */
  close(timeoutMs: number): Promise<boolean>;
}

const WORKER_ENTRY = fileURLToPath(new URL('./worker_main.js', import.meta.url));
/** A worker that dies sooner than this after its start counts as crash-looping (restart back-off). */
const QUICK_DEATH_MS = 30_000;

/**
 * Starts `count` cluster workers serving the gRPC listener (round-robin over connections, which the
 * primary accepts and hands out), restarts any that dies, and relays what they must share: policy
 * reloads, the embedded issuer's keys and revocations, the memory cache, metric snapshots.
 * Resolves once every worker reports SERVING; rejects with the first worker's start-up error.
 */
export async function startWorkerPool(o: WorkerPoolOptions): Promise<WorkerPool> {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  cluster.setupPrimary({ exec: WORKER_ENTRY, args: [] });
  const slots = new Map<number, { worker: Worker; info: WorkerInfo }>();
  let port = 0;
  let closing = false;
  let nextId = 1;
  const pending = new Map<number, { resolve: (m: FromWorker) => void; timer: NodeJS.Timeout }>();
  const closedClean = new Map<number, boolean>();
  let startup: { resolve: () => void; reject: (err: Error) => void } | undefined;

  const send = (w: Worker, m: ToWorker) => {
    if (w.isConnected()) w.send(m);
  };
  const broadcast = (m: ToWorker) => {
    for (const { worker } of slots.values()) send(worker, m);
  };
  const request = (w: Worker, make: (id: number) => ToWorker, timeoutMs: number): Promise<FromWorker | undefined> =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      pending.set(id, { resolve, timer });
      send(w, make(id));
    });
  const settle = (id: number, m: FromWorker) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(m);
  };
  const updateGauge = () => {
    const infos = [...slots.values()].map((s) => s.info.state);
    for (const state of ['starting', 'ready', 'stopping'] as const) o.metrics.workers.set({ state }, infos.filter((s) => s === state).length);
  };

  /** `quickDeaths`: how many times in a row this slot's worker died within QUICK_DEATH_MS of its start. */
  const fork = (slot: number, restarts: number, quickDeaths = 0) => {
    const forkedAt = Date.now();
    const worker = cluster.fork({ PORTCULLIS_WORKER_SLOT: String(slot) });
    const info: WorkerInfo = { slot, pid: worker.process.pid, state: 'starting', startedAt: new Date().toISOString(), restarts };
    slots.set(slot, { worker, info });
    updateGauge();
    worker.on('message', (m: unknown) => {
      if (!isProtocolMessage(m)) return;
      const msg = m as FromWorker;
      switch (msg.pc) {
        case 'hello':
          send(worker, { pc: 'init', config: workerConfig(o.config), issuer: o.issuer(), subjectKey: o.subjectKey.toString('base64') });
          break;
        case 'ready':
          info.state = 'ready';
          port = msg.port;
          updateGauge();
          o.logger.info({ slot, pid: info.pid, restarts }, 'worker ready');
          if ([...slots.values()].every((s) => s.info.state === 'ready')) startup?.resolve();
          break;
        case 'failed':
          o.logger.error({ slot, pid: info.pid, error: msg.error }, 'worker could not start');
          startup?.reject(new PortcullisError('ERR_WORKER_START', `worker ${slot} could not start: ${msg.error}`));
          break;
        case 'policies.reloaded':
        case 'metrics.res':
          settle(msg.id, msg);
          break;
        case 'cache.req':
          answerCacheRequest(o.cache, msg.request, (channel, message) => send(worker, { pc: 'cache.msg', channel, message })).then(
            (value) => send(worker, { pc: 'cache.res', id: msg.id, ok: true, value }),
            (err: unknown) => send(worker, { pc: 'cache.res', id: msg.id, ok: false, error: (err as Error).message }),
          );
          break;
        case 'closed':
          closedClean.set(slot, msg.clean);
          break;
      }
    });
    worker.on('exit', (code, signal) => {
      if (slots.get(slot)?.worker !== worker) return;
      if (closing) {
        slots.delete(slot);
        updateGauge();
        return;
      }
      const wasReady = info.state === 'ready';
      // Not serving any more: /ready counts the slot out until its replacement reports SERVING.
      info.state = 'starting';
      updateGauge();
      o.metrics.workerRestarts.inc();
      o.logger.error({ slot, pid: info.pid, code, signal }, 'worker exited; starting another');
      if (!wasReady && startup) {
        startup.reject(new PortcullisError('ERR_WORKER_START', `worker ${slot} exited during start-up (code ${code ?? signal})`));
        return;
      }
      // A worker that keeps dying soon after its start is started again less and less often (up to
      // every 5 s); one that served for a while is replaced at once.
      const quick = Date.now() - forkedAt < QUICK_DEATH_MS ? quickDeaths + 1 : 0;
      const delay = Math.min(5000, 100 * 2 ** Math.min(quick, 6));
      setTimeout(() => {
        if (!closing) fork(slot, restarts + 1, quick);
      }, delay).unref();
    });
  };

  const started = new Promise<void>((resolve, reject) => {
    startup = { resolve, reject };
  });
  for (let slot = 1; slot <= o.count; slot++) fork(slot, 0);
  const timeoutMs = o.startTimeoutMs ?? 60_000;
  const timer = setTimeout(() => startup?.reject(new PortcullisError('ERR_WORKER_START', `workers did not report SERVING within ${timeoutMs} ms`)), timeoutMs);
  try {
    await started;
  } catch (err) {
    closing = true;
    for (const { worker } of slots.values()) worker.process.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
    startup = undefined;
  }

  const ready = () => [...slots.values()].filter((s) => s.info.state === 'ready');
  return {
    port,
    info: () => [...slots.values()].map((s) => ({ ...s.info })),
    readyCount: () => ready().length,
    keys: (keys) => broadcast({ pc: 'keys', keys }),
    revoked: (jtis, full) => broadcast({ pc: 'revoked', jtis, full }),
    async reloadPolicies(set) {
      const answers = await Promise.all(
        [...slots.values()].map(async ({ worker, info }) => {
          const m = await request(worker, (id) => ({ pc: 'policies.reload', id, set }), 30_000);
          if (m?.pc !== 'policies.reloaded') return { slot: info.slot, ok: false, error: 'no answer' };
          return { slot: info.slot, ok: m.ok, ...(m.revision ? { revision: m.revision } : {}), ...(m.error ? { error: m.error } : {}) };
        }),
      );
      return answers;
    },
    async collectMetrics(timeoutMs = 2000) {
      const answers = await Promise.all(ready().map(({ worker }) => request(worker, (id) => ({ pc: 'metrics.req', id }), timeoutMs)));
      const out: WorkerMetrics[] = [];
      for (const m of answers) if (m?.pc === 'metrics.res') out.push(m.metrics);
      return out;
    },
    drain: () => broadcast({ pc: 'drain' }),
    async close(graceMs) {
      closing = true;
      const all = [...slots.values()];
      for (const s of all) s.info.state = 'stopping';
      updateGauge();
      const exited = all.map(
        ({ worker }) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            worker.once('exit', () => resolve());
          }),
      );
      broadcast({ pc: 'shutdown', timeoutMs: graceMs });
      // A worker that does not finish in time (plus a margin for its own clean-up) is killed.
      const kill = setTimeout(() => all.forEach(({ worker }) => worker.isDead() || worker.process.kill('SIGKILL')), graceMs + 3000);
      await Promise.all(exited);
      clearTimeout(kill);
      return all.every(({ info }) => closedClean.get(info.slot) === true);
    },
  };
}

/**
 * The config a worker gets: the primary's, without the secrets only the primary uses (the
 * key-encryption key, the admin API key, upstream client secrets), so they cross no process
 * boundary they need not cross. The cache URL stays: with Redis each worker connects itself.
 */
export function workerConfig(config: Readonly<Config>): Config {
  return {
    ...config,
    admin: { ...config.admin, api_key: undefined },
    token_module: { ...config.token_module, kek: undefined },
    upstream_providers: config.upstream_providers.map((p) => ({ ...p, client_secret: undefined })),
  } as Config;
}
