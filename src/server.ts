import type { Config } from './config/index.js';
import type { AddressInfo } from 'node:net';
import { createExtAuthzService } from './extauthz/service.js';
import { createAdminServer } from './http/admin.js';
import { createHttpAuthzServer } from './http/http_authz.js';
import { createPublicServer } from './http/public.js';
import { createTokenModule, type TokenModule } from './issuer/module.js';
import { closeListener } from './http/lifecycle.js';
import { createStoreWatchdog, openMemoryStore, openSqliteStore, type Store } from './store/index.js';
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
import { createLocalKeySource, createRemoteKeySource, createTokenVerifier, loadDevIssuer, type TrustedIssuer } from './tokens/index.js';

export interface ServerDeps {
  logger?: Logger;
  clock?: Clock;
  metrics?: Metrics;
  /**
   * Called once when the process cannot go on (the store gone for longer than
   * `lifecycle.store_unavailable_exit_seconds` in production); the CLI drains and exits 1.
   */
  onFatal?: (reason: string) => void;
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
  policies: PolicyRuntime;
  health: HealthState;
  metrics: Metrics;
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

/** The decision core without listeners: issuers and their keys, the verifier, the policy set, the decider. */
export async function createCore(config: Readonly<Config>, deps: ServerDeps = {}) {
  const logger = deps.logger ?? createLogger(config.log.level);
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics(undefined, { defaultMetrics: true });
  const issuers = await trustedIssuers(config, { logger, clock, metrics });
  const verifier = createTokenVerifier({ issuers, clock, metrics, cacheMaxEntries: config.token_cache.max_entries });
  // Tracing off: the decision path is built without any span code.
  const traced = config.observability.tracing.enabled;
  const policies = createPolicyRuntime({ dir: config.policies.dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, logger, metrics });
  const first = policies.reload();
  if (!first.ok) throw new PortcullisError('ERR_POLICY_LOAD', `cannot start: ${first.error}`);
  const shadow = config.policies.shadow_dir ? createPolicyRuntime({ dir: config.policies.shadow_dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, namespace: 's', role: 'shadow', logger, metrics }) : undefined;
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
  });
  const decide = traced ? tracedDecider(decider) : decider;
  const appApi = createAppChecker({ verifier, policies: policies.current, clock, metrics, logger });
  return { logger, clock, metrics, issuers, verifier, policies, shadow, decide, appApi };
}

/** The composition root: builds every part from config and starts the listeners. */
export async function startServer(config: Readonly<Config>, deps: ServerDeps = {}): Promise<PortcullisServer> {
  const t = config.observability.tracing;
  const tracing = t.enabled ? startTracing({ serviceName: config.observability.service_name, endpoint: t.endpoint, sampleRate: t.sample_rate, exportIntervalMs: t.export_interval_ms }) : undefined;
  const { logger, clock, metrics, issuers, verifier, policies, shadow, decide, appApi } = await createCore(config, deps);
  const store = config.token_module.enabled ? openStore(config) : undefined;
  if (config.store.driver === 'memory') logger.warn('store.driver is memory: users, clients, keys and tokens are lost on exit (tests only)');
  const tokens = store ? await createTokenModule({ config, store, clock, metrics, logger }) : undefined;
  const watchers = config.policies.watch
    ? [
        watchPolicyFolder(config.policies.dir, config.policies.watch_debounce_ms, () => void policies.reload(), logger),
        ...(shadow && config.policies.shadow_dir ? [watchPolicyFolder(config.policies.shadow_dir, config.policies.watch_debounce_ms, () => void shadow.reload(), logger)] : []),
      ]
    : [];
  const stopWatching = () => watchers.forEach((stop) => stop());
  let draining = false;
  // Ready only once every listener is up and the gRPC health service reports SERVING.
  let started = false;
  const readiness = () => {
    const keys = Object.fromEntries(verifier.issuers().map((i) => [i.policy.issuer, i.keys.hasKeys()]));
    const checks = { started, policies: policies.current() !== undefined, issuer_keys: keys, draining };
    return { ready: started && checks.policies && Object.values(keys).every(Boolean) && !draining, checks };
  };
  const liveness = async () => {
    try {
      await store?.ping();
      return { ok: true, checks: { store: true } };
    } catch (err) {
      logger.error({ err }, 'store unreachable');
      return { ok: false, checks: { store: false } };
    }
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
    tokens.start();
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
  const httpAuthz = config.http_authz.address ? createHttpAuthzServer({ decide, pathPrefix: config.http_authz.path_prefix, maxBodyBytes: config.request_body.max_bytes, metrics, logger, draining: isDraining }) : undefined;
  if (httpAuthz && config.http_authz.address) {
    const [host, port] = splitAddress(config.http_authz.address);
    await httpAuthz.listen({ host, port });
  }
  const httpAuthzPort = httpAuthz ? (httpAuthz.server.address() as AddressInfo).port : undefined;

  const watchdog = store ? watchStore(config, store, { logger, clock, metrics, onFatal: deps.onFatal }) : undefined;
  health.state.set(Serving.SERVING);
  started = true;
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
    async close({ timeoutMs = config.lifecycle.shutdown_timeout_seconds * 1000 } = {}) {
      drain();
      stopWatching();
      watchdog?.stop();
      // Every listener stops accepting at once; requests in flight finish with everything still in place.
      const finished = await Promise.all([grpc.close(timeoutMs), closeListener(admin, timeoutMs), closeListener(publicHttp, timeoutMs), ...(httpAuthz ? [closeListener(httpAuthz, timeoutMs)] : [])]);
      tokens?.stop();
      for (const i of issuers) i.keys.stop();
      await store?.close();
      await tracing?.shutdown();
      return finished.every(Boolean);
    },
  };
}

/** Pings the store in the background: `auth_store_up`, a log line per outage edge, and in production an exit once it has been gone too long. */
function watchStore(config: Readonly<Config>, store: Store, o: { logger: Logger; clock: Clock; metrics: Metrics; onFatal: ServerDeps['onFatal'] }) {
  const limitMs = config.mode === 'production' ? config.lifecycle.store_unavailable_exit_seconds * 1000 : 0;
  o.metrics.storeUp.set(1);
  const watchdog = createStoreWatchdog({
    ping: () => store.ping(),
    clock: o.clock,
    intervalMs: limitMs > 0 ? Math.min(5000, Math.max(250, limitMs / 4)) : 5000,
    giveUpAfterMs: limitMs,
    onDown(err) {
      o.metrics.storeUp.set(0);
      o.logger.error({ err, exit_after_seconds: limitMs / 1000 || undefined }, 'store unavailable');
    },
    onUp(downMs) {
      o.metrics.storeUp.set(1);
      o.logger.warn({ down_seconds: downMs / 1000 }, 'store available again');
    },
    onGiveUp(downMs, err) {
      const reason = `store unavailable for ${Math.round(downMs / 1000)} s (lifecycle.store_unavailable_exit_seconds: ${limitMs / 1000}): ${(err as Error).message}`;
      o.logger.fatal({ err }, reason);
      o.onFatal?.(reason);
    },
  });
  watchdog.start();
  return watchdog;
}

function openStore(config: Readonly<Config>): Store {
  return config.store.driver === 'memory' ? openMemoryStore() : openSqliteStore({ file: config.store.sqlite_file });
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(address.slice(i + 1))];
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

async function trustedIssuers(config: Readonly<Config>, deps: Required<Omit<ServerDeps, 'onFatal'>>): Promise<TrustedIssuer[]> {
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
