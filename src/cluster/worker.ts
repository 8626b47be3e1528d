import cluster from 'node:cluster';
import { openCache } from '../adapters.js';
import { createAppApiService } from '../appapi/service.js';
import type { Cache } from '../cache/index.js';
import type { Config } from '../config/index.js';
import { createCore } from '../core.js';
import { createExtAuthzService } from '../extauthz/service.js';
import { createHealthService, Serving } from '../grpc/health.js';
import { grpcLimits, startGrpcServer } from '../grpc/server.js';
import { keyedHash } from '../issuer/secrets.js';
import { systemClock } from '../lib/clock.js';
import { createDecisionLog } from '../pipeline/decision_log.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';
import { startTelemetry } from '../telemetry/start.js';
import { createIpcCache, type IpcChannel } from './ipc_cache.js';
import { isProtocolMessage, type FromWorker, type ToWorker } from './messages.js';
import { createMirroredIssuer } from './mirrored_issuer.js';

/**
 * A cluster worker (`workers: N`): serves the gRPC listener (Envoy Check, the app API, health),
 * which cluster shares among the workers, with a decision core of its own (cedar-wasm engine,
 * parsed policies, verified-token cache, JWKS of the configured issuers). Everything with state
 * that must be one (the store, the token module, the admin and public listeners) stays in the
 * primary, which sends the config, the embedded issuer's keys and revocations, and policy reloads.
 */
export async function runWorker(): Promise<void> {
  const listeners: Array<(m: ToWorker) => void> = [];
  const channel: IpcChannel = {
    send: (m: FromWorker) => {
      if (process.connected) process.send!(m);
    },
    onMessage: (fn) => listeners.push(fn),
  };
  process.on('message', (m: unknown) => {
    if (!isProtocolMessage(m)) return;
    for (const fn of listeners) fn(m as ToWorker);
  });
  // The primary owns the signals (it drains and tells the workers); one sent to the whole process
  // group (Ctrl-C) must not stop a worker on its own.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => {});
  // Without the primary there is nobody to serve for.
  process.on('disconnect', () => process.exit(1));

  const init = await new Promise<Extract<ToWorker, { pc: 'init' }>>((resolve) => {
    channel.onMessage((m) => {
      if (m.pc === 'init') resolve(m);
    });
    channel.send({ pc: 'hello' });
  });
  try {
    await serve(init, channel, listeners);
  } catch (err) {
    channel.send({ pc: 'failed', error: (err as Error).message });
    setTimeout(() => process.exit(1), 50).unref();
  }
}

async function serve(init: Extract<ToWorker, { pc: 'init' }>, channel: IpcChannel, listeners: Array<(m: ToWorker) => void>): Promise<void> {
  // The primary watches the policy folder and tells every worker to reload.
  const config: Readonly<Config> = { ...init.config, policies: { ...init.config.policies, watch: false } };
  const clock = systemClock;
  const logger = createLogger(config.observability.logging.level, undefined, config.observability.logging.format).child({ worker: Number(process.env.PORTCULLIS_WORKER_SLOT) || cluster.worker?.id });
  const metrics = createMetrics(undefined, { defaultMetrics: true });
  // Traces go out from here; metrics are collected by the primary (one `/metrics`, one OTLP push).
  const telemetry = await startTelemetry({ ...config.observability, metrics: { ...config.observability.metrics, provider: 'none' } }, metrics.registry);
  process.on('unhandledRejection', (err) => {
    metrics.unhandledErrors.inc({ kind: 'rejection' });
    logger.error({ err }, 'unhandled promise rejection (the worker keeps serving)');
  });
  process.on('uncaughtException', (err) => {
    metrics.unhandledErrors.inc({ kind: 'exception' });
    logger.fatal({ err }, 'uncaught exception: the worker exits and the primary starts another');
    process.exit(1);
  });

  const cache: Cache = config.cache.driver === 'redis' ? await openCache(config, { logger, clock }) : createIpcCache(channel, config.cache.command_timeout_ms);
  const dl = config.observability.decision_log;
  const decisionLog = dl.enabled ? createDecisionLog({ destination: dl.destination, sampleRate: dl.sample_rate, maxPerSecond: dl.max_per_second, clock, metrics, logger }) : undefined;
  const subjectKey = Buffer.from(init.subjectKey, 'base64');
  decisionLog?.setSubjectHash((subject) => keyedHash(subjectKey, subject));
  const core = await createCore(config, { logger, clock, metrics, cache, decisionLog });
  const mirrored = init.issuer ? createMirroredIssuer(init.issuer, clock) : undefined;
  if (mirrored) core.verifier.addIssuer(mirrored.issuer);

  const health = createHealthService();
  const grpc = await startGrpcServer(config.grpc.address, [createExtAuthzService({ decide: core.decide, metrics, logger }), createAppApiService({ ...core.appApi, metrics, logger }), health], grpcLimits(config));
  await Promise.all(core.issuers.map((i) => i.keys.start()));

  let closing = false;
  const close = async (timeoutMs: number) => {
    if (closing) return;
    closing = true;
    health.state.set(Serving.NOT_SERVING);
    const clean = await grpc.close(timeoutMs);
    for (const i of core.issuers) i.keys.stop();
    await cache.close().catch(() => {});
    await decisionLog?.close();
    await telemetry.shutdown();
    channel.send({ pc: 'closed', clean });
    // Gives the IPC message time to leave before the channel goes.
    setTimeout(() => process.exit(0), 20);
  };

  listeners.push((m) => {
    switch (m.pc) {
      case 'keys':
        mirrored?.setKeys(m.keys);
        break;
      case 'revoked':
        mirrored?.revoke(m.jtis, m.full);
        break;
      case 'policies.reload': {
        const runtime = m.set === 'shadow' ? core.shadow : core.policies;
        if (!runtime) break;
        const outcome = runtime.reload();
        const revision = runtime.current()?.bundle.revision;
        channel.send(outcome.ok ? { pc: 'policies.reloaded', id: m.id, ok: true, ...(revision ? { revision } : {}) } : { pc: 'policies.reloaded', id: m.id, ok: false, error: outcome.error });
        break;
      }
      case 'drain':
        health.state.set(Serving.NOT_SERVING);
        break;
      case 'shutdown':
        void close(m.timeoutMs);
        break;
      case 'metrics.req':
        void metrics.registry.getMetricsAsJSON().then((json) => channel.send({ pc: 'metrics.res', id: m.id, metrics: json as never }));
        break;
      default:
        break;
    }
  });
  health.state.set(Serving.SERVING);
  channel.send({ pc: 'ready', port: grpc.port });
  logger.info({ grpc_port: grpc.port, pid: process.pid }, 'worker serving');
}
