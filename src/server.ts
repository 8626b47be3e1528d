import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { openCache, openStore } from './adapters.js';
import type { Cache } from './cache/index.js';
import type { Config } from './config/index.js';
import { createCore } from './core.js';
import { createAppApiService } from './appapi/service.js';
import { usableCpus } from './cluster/cpus.js';
import { clusterMetricsSource } from './cluster/metrics_source.js';
import type { WorkerInfo } from './cluster/pool.js';
import type { ClusterServing } from './cluster/serve.js';
import { createExtAuthzService } from './extauthz/service.js';
import { createHealthService, Serving, type HealthState } from './grpc/health.js';
import { grpcLimits, startGrpcServer, type GrpcListener } from './grpc/server.js';
import { createAdminServer } from './http/admin.js';
import { createHttpAuthzServer } from './http/http_authz.js';
import { closeListener } from './http/lifecycle.js';
import { createPublicServer } from './http/public.js';
import { watchStore } from './lifecycle/store_watch.js';
import { createTokenModule, type TokenModule } from './issuer/module.js';
import { keyedHash } from './issuer/secrets.js';
import { systemClock, type Clock } from './lib/clock.js';
import { createDecisionLog } from './pipeline/decision_log.js';
import { watchPolicyFolder, type PolicyRuntime } from './policy/index.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { startTelemetry } from './telemetry/start.js';

export interface ServerDeps {
  logger?: Logger;
  clock?: Clock;
  metrics?: Metrics;
  /** Shared short-lived state (DPoP replay); built from config when not given. */
  cache?: Cache;
  /**
   * Called once when the process cannot go on (the store gone for longer than
   * `lifecycle.store_unavailable_exit_seconds` in production); the CLI drains and exits 1.
   */
  onFatal?: (reason: string) => void;
  /**
   * Called with the server just before it logs "portcullis serving": the CLI installs its signal
   * handlers there, so a SIGTERM sent by whoever waits for that line never meets Node's default
   * (terminate at once).
   */
  onServing?: (server: PortcullisServer) => void;
}

export interface PortcullisServer {
  grpcPort: number;
  adminPort: number;
  /** Port of the HTTP ext_authz listener, when configured. */
  httpAuthzPort: number | undefined;
  /** Port of the public HTTP listener (token module, /health, /ready). */
  httpPort: number;
  /** The token module's issuer URL, when enabled. */
  issuer: string | undefined;
  tokens: TokenModule | undefined;
  /** Shared short-lived state (rate limits, fan-out): memory, or Redis across replicas. */
  cache: Cache;
  policies: PolicyRuntime;
  /** gRPC health of this process's listener; with cluster workers each has its own, which `drain()` reaches. */
  health: HealthState;
  metrics: Metrics;
  /** The cluster workers serving gRPC (`workers` > 1); empty when this process serves it. */
  workers(): WorkerInfo[];
  /** Reloads policies/ (SIGHUP); the last good set keeps serving on failure. */
  reloadPolicies(): ReturnType<PolicyRuntime['reload']>;
  /** Re-reads signing keys and revocations from the store (SIGHUP). */
  reloadKeys(): Promise<void>;
  /** Stops reporting ready (gRPC NOT_SERVING, /ready 503) while still answering. */
  drain(): void;
  /**
   * Drains, stops accepting, waits up to `timeoutMs` (default `lifecycle.shutdown_timeout_seconds`)
   * for requests in flight, cuts the rest, then closes the store. True when no request was cut.
   */
  close(options?: { timeoutMs?: number }): Promise<boolean>;
}

/** The composition root: builds every part from config and starts the listeners. */
export async function startServer(config: Readonly<Config>, deps: ServerDeps = {}): Promise<PortcullisServer> {
  const metrics = deps.metrics ?? createMetrics(undefined, { defaultMetrics: true });
  // With cluster workers, /metrics and the OTLP push merge their registries into this one's.
  let cluster: ClusterServing | undefined;
  const metricsSource = clusterMetricsSource(metrics.registry, () => cluster?.pool);
  const telemetry = await startTelemetry(config.observability, metricsSource);
  const logger = deps.logger ?? createLogger(config.observability.logging.level, undefined, config.observability.logging.format);
  const clock = deps.clock ?? systemClock;
  // Opened first: the DPoP replay cache on the Check path and the token module share it.
  const cache = deps.cache ?? (await openCache(config, { logger, clock }));
  const closeOwnCache = async () => {
    // A cache handed in by the embedder is the embedder's to close.
    if (!deps.cache) await cache.close();
  };
  // The decision log belongs to the serving process (not to one-off CLI evaluations through createCore).
  const dl = config.observability.decision_log;
  const decisionLog = dl.enabled ? createDecisionLog({ destination: dl.destination, sampleRate: dl.sample_rate, maxPerSecond: dl.max_per_second, clock, metrics, logger }) : undefined;
  const { issuers, verifier, policies, shadow, decide, appApi } = await createCore(config, { logger, clock, metrics, cache, decisionLog }).catch(async (err: unknown) => {
    await closeOwnCache();
    throw err;
  });
  const store = config.token_module.enabled ? await openStore(config, logger) : undefined;
  if (config.store.driver === 'memory') logger.warn('store.driver is memory: users, clients, keys and tokens are lost on exit (tests only)');
  const tokens = store
    ? await createTokenModule({ config, store, cache, clock, metrics, logger }).catch(async (err: unknown) => {
        await closeOwnCache();
        await store.close();
        throw err;
      })
    : undefined;
  const watchers = config.policies.watch
    ? [
        watchPolicyFolder(config.policies.dir, config.policies.watch_debounce_ms, () => void policies.reload(), logger),
        ...(shadow && config.policies.shadow_dir ? [watchPolicyFolder(config.policies.shadow_dir, config.policies.watch_debounce_ms, () => void shadow.reload(), logger)] : []),
      ]
    : [];
  const stopWatching = () => watchers.forEach((stop) => stop());
  let draining = false;
  const workerCount = config.workers === 'auto' ? Math.min(usableCpus(), 64) : config.workers;
  // Ready only once every listener is up and the gRPC health service reports SERVING.
  let started = false;
  const storeReachable = async () => {
    try {
      await store?.ping();
      return true;
    } catch (err) {
      logger.error({ err }, 'store unreachable');
      return false;
    }
  };
  // The store and (with Redis) the cache count for /ready: a replica that cannot reach them cannot
  // log anyone in or share replay and rate-limit state. Check (gRPC health) keeps SERVING.
  const readiness = async () => {
    const keys = Object.fromEntries(verifier.issuers().map((i) => [i.policy.issuer, i.keys.hasKeys()]));
    const storeOk = await storeReachable();
    // Redis is pinged (bounded by cache.command_timeout_ms); the memory cache cannot be down.
    const cacheUp = cache.driver === 'memory' || (await cache.ping().then(() => true, (err: unknown) => (logger.warn({ err }, 'cache unreachable: not ready'), false)));
    // Every worker counts: a restarting one would refuse the connections round-robin hands it.
    const pool = cluster?.pool;
    const workersOk = !pool || pool.readyCount() === workerCount;
    const checks = { started, policies: policies.current() !== undefined, issuer_keys: keys, ...(store ? { store: storeOk } : {}), ...(cache.driver === 'redis' ? { cache: cacheUp } : {}), ...(pool ? { workers: workersOk } : {}), draining };
    return { ready: started && checks.policies && Object.values(keys).every(Boolean) && storeOk && cacheUp && workersOk && !draining, checks };
  };
  const liveness = async () => {
    const ok = await storeReachable();
    return { ok, checks: { store: ok } };
  };
  // The public listener is bound first: when token_module.issuer is unset, the issuer URL is its
  // bound address, and the ext_authz verifier must trust it before the first Check.
  const isDraining = () => draining;
  const publicHttp = createPublicServer({ tokens, readiness, liveness, trustProxy: config.http.trusted_proxy_hops, metrics, logger, draining: isDraining });
  const [httpHost, httpPortWanted] = splitAddress(config.http.address);
  await publicHttp.listen({ host: httpHost, port: httpPortWanted });
  const httpPort = (publicHttp.server.address() as AddressInfo).port;
  if (tokens) {
    const audit = tokens.ctx.audit;
    for (const runtime of [policies, shadow]) {
      runtime?.onReload((o) =>
        void audit.record('policy.reload', o.ok ? 'success' : 'failure', o.ok ? { details: { set: o.set, revision: o.revision, policies: o.policies } } : { reason: 'policy_invalid', details: { set: o.set, error: o.error.slice(0, 500) } }),
      );
    }
    tokens.setIssuer(`http://${hostOf(config.http.address)}:${httpPort}`);
    verifier.addIssuer(tokens.trustedIssuer());
    await tokens.start();
  }
  // Decision-log subjects are hashed like the audit log's users (keyed by the KEK); without the
  // token module, under a key of this process. Cluster workers get the same key.
  const subjectKey = tokens ? tokens.ctx.kek.derive('user-ref') : randomBytes(32);
  decisionLog?.setSubjectHash((subject) => keyedHash(subjectKey, subject));

  const closeStarted = async () => {
    await publicHttp.close();
    await tokens?.stop();
    await store?.close();
    await closeOwnCache();
    await decisionLog?.close();
    await telemetry.shutdown();
  };
  const health = createHealthService();
  let grpc: Pick<GrpcListener, 'port' | 'close'>;
  if (workerCount > 1) {
    const { serveWithWorkers } = await import('./cluster/serve.js');
    cluster = await serveWithWorkers({ config, count: workerCount, cache, subjectKey, tokens, runtimes: [policies, shadow], logger, metrics }).catch(async (err: unknown) => {
      await closeStarted();
      throw err;
    });
    grpc = cluster.grpc;
  } else {
    grpc = await startGrpcServer(config.grpc.address, [createExtAuthzService({ decide, metrics, logger }), createAppApiService({ ...appApi, metrics, logger }), health], grpcLimits(config));
  }
  // SERVING waits for each issuer's first key load (bounded by its fetch timeout); an issuer whose
  // endpoint is down does not keep the rest from serving, and its keys arrive on a later refresh.
  await Promise.all(issuers.map((i) => i.keys.start()));
  for (const i of issuers) if (!i.keys.hasKeys()) logger.warn({ issuer: i.policy.issuer }, 'no signing keys yet for issuer; its tokens are rejected until a fetch succeeds');

  if (!config.admin.api_key) logger.warn('admin.api_key is not set: /admin/* refuses every request');
  const admin = createAdminServer({ registry: telemetry.servesPrometheus ? metricsSource : undefined, workers: cluster ? { info: cluster.pool.info, lastReload: cluster.lastReload } : undefined, metricsProvider: config.observability.metrics.provider, policies, readiness, liveness, apiKey: config.admin.api_key, logger, tokens });
  const [adminHost, adminPort] = splitAddress(config.admin.address);
  await admin.listen({ host: adminHost, port: adminPort });
  const boundAdmin = (admin.server.address() as AddressInfo).port;
  const httpAuthz = config.http_authz.address ? createHttpAuthzServer({ decide, pathPrefix: config.http_authz.path_prefix, maxBodyBytes: config.request_body.max_bytes, metrics, logger, draining: isDraining }) : undefined;
  if (httpAuthz && config.http_authz.address) {
    const [host, port] = splitAddress(config.http_authz.address);
    await httpAuthz.listen({ host, port });
  }
  const httpAuthzPort = httpAuthz ? (httpAuthz.server.address() as AddressInfo).port : undefined;

  const watchdog = store ? watchStore(config, store, { logger, clock, metrics, onFatal: deps.onFatal }) : undefined;
  health.state.set(Serving.SERVING);
  started = true;

  const drain = () => {
    draining = true;
    health.state.set(Serving.NOT_SERVING);
    cluster?.pool.drain();
  };
  const server: PortcullisServer = {
    grpcPort: grpc.port,
    adminPort: boundAdmin,
    httpAuthzPort,
    httpPort,
    issuer: tokens?.ctx.issuer(),
    tokens,
    cache,
    policies,
    health: health.state,
    metrics,
    workers: () => cluster?.pool.info() ?? [],
    reloadPolicies: () => {
      shadow?.reload();
      return policies.reload();
    },
    reloadKeys: async () => {
      await tokens?.reload();
    },
    drain,
    async close({ timeoutMs = config.lifecycle.shutdown_timeout_seconds * 1000 } = {}) {
      drain();
      stopWatching();
      watchdog?.stop();
      // Every listener stops accepting at once; requests in flight finish with everything still in place.
      const finished = await Promise.all([grpc.close(timeoutMs), closeListener(admin, timeoutMs), closeListener(publicHttp, timeoutMs), ...(httpAuthz ? [closeListener(httpAuthz, timeoutMs)] : [])]);
      await tokens?.stop();
      for (const i of issuers) i.keys.stop();
      await store?.close();
      await closeOwnCache();
      await decisionLog?.close();
      await telemetry.shutdown();
      return finished.every(Boolean);
    },
  };
  deps.onServing?.(server);
  logger.info(
    { grpc: `${hostOf(config.grpc.address)}:${grpc.port}`, admin: `${hostOf(config.admin.address)}:${boundAdmin}`, http: `${hostOf(config.http.address)}:${httpPort}`, issuers: verifier.issuers().map((i) => i.policy.issuer), mode: config.mode },
    'portcullis serving',
  );
  return server;
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(address.slice(i + 1))];
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}
