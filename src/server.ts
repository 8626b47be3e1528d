import { createMemoryCache, type Cache } from './cache/index.js';
import type { Config } from './config/index.js';
import type { AddressInfo } from 'node:net';
import { createExtAuthzService } from './extauthz/service.js';
import { createAdminServer } from './http/admin.js';
import { createHttpAuthzServer } from './http/http_authz.js';
import { createPublicServer } from './http/public.js';
import { createTokenModule, type TokenModule } from './issuer/module.js';
import type { Store } from './store/index.js';
import { openMemoryStore, openSqliteStore } from './store/sqlite.js';
import { createAppApiService } from './appapi/service.js';
import { createAppChecker } from './pipeline/app_check.js';
import { createHealthService, Serving, type HealthState } from './grpc/health.js';
import { startGrpcServer } from './grpc/server.js';
import { systemClock, type Clock } from './lib/clock.js';
import { PortcullisError } from './lib/errors.js';
import { createDecider } from './pipeline/index.js';
import { tracedDecider, tracedPolicies, tracedVerifier } from './pipeline/traced.js';
import { startTracing } from './telemetry/otel.js';
import { createPolicyRuntime, watchPolicyFolder, type PolicyRuntime } from './policy/index.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { createLocalKeySource, createRemoteKeySource, createTokenVerifier, createDpopVerifier, loadDevIssuer, type TrustedIssuer } from './tokens/index.js';
import type { SenderConstraint } from './pipeline/authenticate.js';

export interface ServerDeps {
  logger?: Logger;
  clock?: Clock;
  metrics?: Metrics;
  /** Shared short-lived state (DPoP replay); built from config when not given. */
  cache?: Cache;
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
  health: HealthState;
  metrics: Metrics;
  /** Reloads policies/ (SIGHUP); the last good set keeps serving on failure. */
  reloadPolicies(): ReturnType<PolicyRuntime['reload']>;
  /** Re-reads signing keys and revocations from the store (SIGHUP). */
  reloadKeys(): Promise<void>;
  /** Stops reporting ready (gRPC NOT_SERVING, /ready 503) while still answering. */
  drain(): void;
  close(): Promise<void>;
}

/** The decision core without listeners: issuers and their keys, the verifier, the policy set, the decider. */
export async function createCore(config: Readonly<Config>, deps: ServerDeps = {}) {
  const logger = deps.logger ?? createLogger(config.log.level);
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics(undefined, { defaultMetrics: true });
  const issuers = await trustedIssuers(config, { logger, clock, metrics });
  const cache = deps.cache ?? createMemoryCache({ clock });
  const dpop = senderConstraint(config, cache, clock);
  const verifier = createTokenVerifier({ issuers, clock, metrics, cacheMaxEntries: config.token_cache.max_entries, maxTokenBytes: config.limits.max_token_bytes });
  const limits = { maxHeaderCount: config.limits.max_header_count, maxHeaderBytes: config.limits.max_header_bytes, maxEntities: config.limits.max_entities };
  // Tracing off: the decision path is built without any span code.
  const traced = config.observability.tracing.enabled;
  const policies = createPolicyRuntime({ dir: config.policies.dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, maxFileBytes: config.policies.max_file_bytes, logger, metrics });
  const first = policies.reload();
  if (!first.ok) throw new PortcullisError('ERR_POLICY_LOAD', `cannot start: ${first.error}`);
  const shadow = config.policies.shadow_dir ? createPolicyRuntime({ dir: config.policies.shadow_dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, maxFileBytes: config.policies.max_file_bytes, namespace: 's', role: 'shadow', logger, metrics }) : undefined;
  // A broken shadow set is reported and retried on the next reload; it never stops the server.
  shadow?.reload();
  const decider = createDecider({
    verifier: traced ? tracedVerifier(verifier) : verifier,
    policies: traced ? tracedPolicies(policies.current) : policies.current,
    clock,
    metrics,
    logger,
    maxBodyBytes: config.request_body.max_bytes,
    shadow: shadow?.current,
    dpop,
    limits,
  });
  const decide = traced ? tracedDecider(decider) : decider;
  const appApi = createAppChecker({ verifier, policies: policies.current, clock, metrics, logger, dpop, maxEntities: limits.maxEntities });
  return { logger, clock, metrics, cache, issuers, verifier, policies, shadow, decide, appApi, limits };
}

/** The composition root: builds every part from config and starts the listeners. */
export async function startServer(config: Readonly<Config>, deps: ServerDeps = {}): Promise<PortcullisServer> {
  const t = config.observability.tracing;
  const tracing = t.enabled ? startTracing({ serviceName: config.observability.service_name, endpoint: t.endpoint, sampleRate: t.sample_rate, exportIntervalMs: t.export_interval_ms }) : undefined;
  const logger = deps.logger ?? createLogger(config.log.level);
  const clock = deps.clock ?? systemClock;
  // Opened first: the DPoP replay cache on the Check path and the token module share it.
  const cache = deps.cache ?? (await openCache(config, { logger, clock }));
  const closeOwnCache = async () => {
    // A cache handed in by the embedder is the embedder's to close.
    if (!deps.cache) await cache.close();
  };
  const { metrics, issuers, verifier, policies, shadow, decide, appApi } = await createCore(config, { ...deps, logger, clock, cache }).catch(async (err: unknown) => {
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
    const checks = { policies: policies.current() !== undefined, issuer_keys: keys, ...(store ? { store: storeOk } : {}), ...(cache.driver === 'redis' ? { cache: cacheUp } : {}), draining };
    return { ready: checks.policies && Object.values(keys).every(Boolean) && storeOk && cacheUp && !draining, checks };
  };
  const liveness = async () => {
    const ok = await storeReachable();
    return { ok, checks: { store: ok } };
  };
  // The public listener is bound first: when token_module.issuer is unset, the issuer URL is its
  // bound address, and the ext_authz verifier must trust it before the first Check.
  const publicHttp = createPublicServer({ tokens, readiness, liveness, trustProxy: config.http.trusted_proxy_hops, metrics, logger });
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

  const health = createHealthService();
  const grpc = await startGrpcServer(config.grpc.address, [createExtAuthzService({ decide, metrics, logger }), createAppApiService({ ...appApi, metrics, logger }), health], config.grpc.max_receive_message_bytes);
  // SERVING waits for each issuer's first key load (bounded by its fetch timeout); an issuer whose
  // endpoint is down does not keep the rest from serving, and its keys arrive on a later refresh.
  await Promise.all(issuers.map((i) => i.keys.start()));
  for (const i of issuers) if (!i.keys.hasKeys()) logger.warn({ issuer: i.policy.issuer }, 'no signing keys yet for issuer; its tokens are rejected until a fetch succeeds');

  if (!config.admin.api_key) logger.warn('admin.api_key is not set: /admin/* refuses every request');
  const admin = createAdminServer({ registry: metrics.registry, policies, readiness, liveness, apiKey: config.admin.api_key, logger, tokens });
  const [adminHost, adminPort] = splitAddress(config.admin.address);
  await admin.listen({ host: adminHost, port: adminPort });
  const boundAdmin = (admin.server.address() as AddressInfo).port;
  const httpAuthz = config.http_authz.address ? createHttpAuthzServer({ decide, pathPrefix: config.http_authz.path_prefix, maxBodyBytes: config.request_body.max_bytes, metrics, logger }) : undefined;
  if (httpAuthz && config.http_authz.address) {
    const [host, port] = splitAddress(config.http_authz.address);
    await httpAuthz.listen({ host, port });
  }
  const httpAuthzPort = httpAuthz ? (httpAuthz.server.address() as AddressInfo).port : undefined;

  health.state.set(Serving.SERVING);
  logger.info(
    { grpc: `${hostOf(config.grpc.address)}:${grpc.port}`, admin: `${hostOf(config.admin.address)}:${boundAdmin}`, http: `${hostOf(config.http.address)}:${httpPort}`, issuers: verifier.issuers().map((i) => i.policy.issuer), mode: config.mode },
    'portcullis serving',
  );

  const drain = () => {
    draining = true;
    health.state.set(Serving.NOT_SERVING);
  };
  return {
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
    reloadPolicies: () => {
      shadow?.reload();
      return policies.reload();
    },
    reloadKeys: async () => {
      await tokens?.reload();
    },
    drain,
    async close() {
      drain();
      stopWatching();
      await tokens?.stop();
      await grpc.close();
      await admin.close();
      await httpAuthz?.close();
      await publicHttp.close();
      for (const i of issuers) i.keys.stop();
      await store?.close();
      await closeOwnCache();
      await tracing?.shutdown();
    },
  };
}

/** DPoP proof checks for the ext_authz path and the app API (no server nonces there). */
function senderConstraint(config: Readonly<Config>, cache: Cache, clock: Clock): SenderConstraint | undefined {
  const d = config.dpop;
  if (!d.enabled) return undefined;
  return {
    verify: createDpopVerifier({ algorithms: d.algorithms, iatWindowSeconds: d.iat_window_seconds, maxProofBytes: d.max_proof_bytes, replay: cache, clock }),
    origins: d.htu_origins,
    algorithms: d.algorithms,
  };
}

/** The cache from config: the only place, with the CLI's token module, that names its adapters. */
export async function openCache(config: Readonly<Config>, deps: { logger: Logger; clock: Clock }): Promise<Cache> {
  const c = config.cache;
  if (c.driver === 'memory') return createMemoryCache({ clock: deps.clock, maxEntries: c.max_entries });
  const { createRedisCache } = await import('./cache/redis.js');
  const cache = await createRedisCache({ url: c.url!, keyPrefix: c.key_prefix, commandTimeoutMs: c.command_timeout_ms, connectTimeoutMs: c.connect_timeout_ms, logger: deps.logger });
  deps.logger.info({ key_prefix: c.key_prefix }, 'cache: redis (rate limits, replay cache and fan-out shared across replicas)');
  return cache;
}

/** The one place that names store adapters (the server and the administration commands open stores through it). */
export async function openStore(config: Readonly<Config>, logger?: Logger): Promise<Store> {
  const s = config.store;
  if (s.driver === 'memory') return openMemoryStore();
  if (s.driver === 'sqlite') return openSqliteStore({ file: s.sqlite_file });
  // pg is loaded only when configured: every CLI command starts through here.
  const { openPostgresStore } = await import('./store/postgres.js');
  return openPostgresStore({
    url: s.url!,
    schema: s.schema,
    poolSize: s.pool_size,
    connectTimeoutMs: s.connect_timeout_ms,
    statementTimeoutMs: s.statement_timeout_ms,
    onIdleError: (err) => logger?.warn({ err }, 'PostgreSQL closed a pooled connection; the pool replaces it'),
  });
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(address.slice(i + 1))];
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

async function trustedIssuers(config: Readonly<Config>, deps: Required<Omit<ServerDeps, 'cache'>>): Promise<TrustedIssuer[]> {
  const list: TrustedIssuer[] = config.issuers.map((policy) => ({ policy, keys: createRemoteKeySource(policy, deps) }));
  if (config.dev_issuer.enabled) {
    const dev = await loadDevIssuer({ issuer: config.dev_issuer.issuer, audience: config.dev_issuer.audience, keyFile: config.dev_issuer.key_file, clock: deps.clock });
    deps.logger.warn({ issuer: dev.issuer, key_file: config.dev_issuer.key_file }, 'development issuer enabled: tokens minted with its local key are trusted (refused in mode: production)');
    list.push({
      policy: { issuer: dev.issuer, audiences: [dev.audience], algorithms: ['ES256'], clock_skew_seconds: 30, required_typ: 'at+jwt', roles_claim: 'roles', scope_claim: 'scope' },
      keys: createLocalKeySource({ keys: [dev.publicJwk] }),
    });
  }
  return list;
}
