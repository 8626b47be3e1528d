import type { Config } from './config/index.js';
import type { AddressInfo } from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { createExtAuthzService } from './extauthz/service.js';
import { createAdminServer } from './http/admin.js';
import { createHttpAuthzServer } from './http/http_authz.js';
import { createPublicServer } from './http/public.js';
import { createTokenModule, type TokenModule } from './issuer/module.js';
import { openMemoryStore, openSqliteStore, type Store } from './store/index.js';
import { createAppApiService } from './appapi/service.js';
import { createAppChecker } from './pipeline/app_check.js';
import { createHealthService, Serving, type HealthState } from './grpc/health.js';
import { startGrpcServer } from './grpc/server.js';
import { systemClock, type Clock } from './lib/clock.js';
import { PortcullisError } from './lib/errors.js';
import { createDecider } from './pipeline/index.js';
import { createDecisionLog, type DecisionLog } from './pipeline/decision_log.js';
import { requestEntities } from './pipeline/entities.js';
import { tracedAppCheck, tracedDecider, tracedPolicies, tracedResourceEntities, tracedVerifier } from './pipeline/traced.js';
import { startTelemetry } from './telemetry/start.js';
import { createPolicyRuntime, watchPolicyFolder, type PolicyRuntime } from './policy/index.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { createLocalKeySource, createRemoteKeySource, createTokenVerifier, loadDevIssuer, type TrustedIssuer } from './tokens/index.js';

export interface ServerDeps {
  logger?: Logger;
  clock?: Clock;
  metrics?: Metrics;
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
  close(): Promise<void>;
}

/** The decision core without listeners: issuers and their keys, the verifier, the policy set, the decider. */
export async function createCore(config: Readonly<Config>, deps: ServerDeps & { decisionLog?: DecisionLog | undefined } = {}) {
  const logger = deps.logger ?? createLogger(config.observability.logging.level, undefined, config.observability.logging.format);
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics(undefined, { defaultMetrics: true });
  // Tracing off: the decision path is built without any span code.
  const traced = config.observability.tracing.enabled;
  const issuers = await trustedIssuers(config, { logger, clock, metrics }, traced);
  const verifier = createTokenVerifier({ issuers, clock, metrics, cacheMaxEntries: config.token_cache.max_entries });
  const decisionLog = deps.decisionLog;
  const resourceEntities = traced ? tracedResourceEntities(requestEntities) : requestEntities;
  const policies = createPolicyRuntime({ dir: config.policies.dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, logger, metrics });
  const first = policies.reload();
  if (!first.ok) throw new PortcullisError('ERR_POLICY_LOAD', `cannot start: ${first.error}`);
  const shadow = config.policies.shadow_dir ? createPolicyRuntime({ dir: config.policies.shadow_dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, namespace: 's', role: 'shadow', logger, metrics }) : undefined;
  // A broken shadow set is reported and retried on the next reload; it never stops the server.
  shadow?.reload();
  const core = {
    verifier: traced ? tracedVerifier(verifier) : verifier,
    policies: traced ? tracedPolicies(policies.current) : policies.current,
    clock,
    metrics,
    logger,
    decisionLog,
    resourceEntities,
  };
  const decider = createDecider({ ...core, maxBodyBytes: config.request_body.max_bytes, shadow: shadow?.current });
  const decide = traced ? tracedDecider(decider) : decider;
  const app = createAppChecker(core);
  const appApi = traced ? { ...app, check: tracedAppCheck(app.check) } : app;
  return { logger, clock, metrics, issuers, verifier, policies, shadow, decide, appApi };
}

/** The composition root: builds every part from config and starts the listeners. */
export async function startServer(config: Readonly<Config>, deps: ServerDeps = {}): Promise<PortcullisServer> {
  const metrics = deps.metrics ?? createMetrics(undefined, { defaultMetrics: true });
  const telemetry = await startTelemetry(config.observability, metrics.registry);
  const logger = deps.logger ?? createLogger(config.observability.logging.level, undefined, config.observability.logging.format);
  const clock = deps.clock ?? systemClock;
  // The decision log belongs to the serving process (not to one-off CLI evaluations through createCore).
  const dl = config.observability.decision_log;
  const decisionLog = dl.enabled ? createDecisionLog({ destination: dl.destination, sampleRate: dl.sample_rate, maxPerSecond: dl.max_per_second, clock, metrics, logger }) : undefined;
  const { issuers, verifier, policies, shadow, decide, appApi } = await createCore(config, { logger, clock, metrics, decisionLog });
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
  const readiness = () => {
    const keys = Object.fromEntries(verifier.issuers().map((i) => [i.policy.issuer, i.keys.hasKeys()]));
    const checks = { policies: policies.current() !== undefined, issuer_keys: keys, draining };
    return { ready: checks.policies && Object.values(keys).every(Boolean) && !draining, checks };
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
    decisionLog?.setSubjectHash(tokens.ctx.audit.userRef);
    tokens.setIssuer(`http://${hostOf(config.http.address)}:${httpPort}`);
    verifier.addIssuer(tokens.trustedIssuer());
    tokens.start();
  }

  // Without the token module there is no audit key: subjects are hashed under a key of this process.
  if (!tokens) decisionLog?.setSubjectHash(processSubjectHash());
  const health = createHealthService();
  const grpc = await startGrpcServer(config.grpc.address, [createExtAuthzService({ decide, metrics, logger }), createAppApiService({ ...appApi, metrics, logger }), health], config.grpc.max_receive_message_bytes);
  // SERVING waits for each issuer's first key load (bounded by its fetch timeout); an issuer whose
  // endpoint is down does not keep the rest from serving, and its keys arrive on a later refresh.
  await Promise.all(issuers.map((i) => i.keys.start()));
  for (const i of issuers) if (!i.keys.hasKeys()) logger.warn({ issuer: i.policy.issuer }, 'no signing keys yet for issuer; its tokens are rejected until a fetch succeeds');

  if (!config.admin.api_key) logger.warn('admin.api_key is not set: /admin/* refuses every request');
  const admin = createAdminServer({ registry: telemetry.servesPrometheus ? metrics.registry : undefined, metricsProvider: config.observability.metrics.provider, policies, readiness, liveness, apiKey: config.admin.api_key, logger, tokens });
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
      tokens?.stop();
      await grpc.close();
      await admin.close();
      await httpAuthz?.close();
      await publicHttp.close();
      for (const i of issuers) i.keys.stop();
      await store?.close();
      await decisionLog?.close();
      await telemetry.shutdown();
    },
  };
}

function processSubjectHash(): (subject: string) => string {
  const key = randomBytes(32);
  return (subject) => createHmac('sha256', key).update(subject).digest('base64url').slice(0, 22);
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

async function trustedIssuers(config: Readonly<Config>, deps: Required<ServerDeps>, traced: boolean): Promise<TrustedIssuer[]> {
  const list: TrustedIssuer[] = config.issuers.map((policy) => ({ policy, keys: createRemoteKeySource(policy, { ...deps, traced }) }));
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
