import { createMemoryCache, type Cache } from './cache/index.js';
import type { Config } from './config/index.js';
import type { Clock } from './lib/clock.js';
import { systemClock } from './lib/clock.js';
import { PortcullisError } from './lib/errors.js';
import type { SenderConstraint } from './pipeline/authenticate.js';
import { createAppChecker } from './pipeline/app_check.js';
import type { DecisionLog } from './pipeline/decision_log.js';
import { requestEntities } from './pipeline/entities.js';
import { createDecider } from './pipeline/index.js';
import { tracedAppCheck, tracedDecider, tracedPolicies, tracedResourceEntities, tracedVerifier } from './pipeline/traced.js';
import { createPolicyRuntime } from './policy/index.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { createDpopVerifier, createLocalKeySource, createRemoteKeySource, createTokenVerifier, loadDevIssuer, type TrustedIssuer } from './tokens/index.js';

export interface CoreDeps {
  logger?: Logger;
  clock?: Clock;
  metrics?: Metrics;
  /** Shared short-lived state (the DPoP replay cache); a process-local one when not given. */
  cache?: Cache;
  /** Sampled decision records; only the serving process writes them. */
  decisionLog?: DecisionLog | undefined;
}

/**
 * The decision core without listeners: issuers and their keys, the verifier, the policy set, the
 * Envoy decider and the app checker. Used by the server and by offline CLI evaluations.
 */
export async function createCore(config: Readonly<Config>, deps: CoreDeps = {}) {
  const logger = deps.logger ?? createLogger(config.observability.logging.level, undefined, config.observability.logging.format);
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics(undefined, { defaultMetrics: true });
  const cache = deps.cache ?? createMemoryCache({ clock });
  // Tracing off: the decision path is built without any span code.
  const traced = config.observability.tracing.enabled;
  const issuers = await trustedIssuers(config, { logger, clock, metrics }, traced);
  const verifier = createTokenVerifier({ issuers, clock, metrics, cacheMaxEntries: config.token_cache.max_entries, maxTokenBytes: config.limits.max_token_bytes });
  const limits = { maxHeaderCount: config.limits.max_header_count, maxHeaderBytes: config.limits.max_header_bytes, maxEntities: config.limits.max_entities };
  const runtime = (dir: string, extra: { namespace?: string; role?: 'shadow' } = {}) =>
    createPolicyRuntime({ dir, warmupChecks: config.grpc.warmup_checks, decisionCacheSize: config.policies.decision_cache_size, maxFileBytes: config.policies.max_file_bytes, logger, metrics, ...extra });
  const policies = runtime(config.policies.dir);
  const first = policies.reload();
  if (!first.ok) throw new PortcullisError('ERR_POLICY_LOAD', `cannot start: ${first.error}`);
  const shadow = config.policies.shadow_dir ? runtime(config.policies.shadow_dir, { namespace: 's', role: 'shadow' }) : undefined;
  // A broken shadow set is reported and retried on the next reload; it never stops the server.
  shadow?.reload();
  const dpop = senderConstraint(config, cache, clock);
  const shared = {
    verifier: traced ? tracedVerifier(verifier) : verifier,
    policies: traced ? tracedPolicies(policies.current) : policies.current,
    clock,
    metrics,
    logger,
    dpop,
    decisionLog: deps.decisionLog,
    resourceEntities: traced ? tracedResourceEntities(requestEntities) : requestEntities,
  };
  const decider = createDecider({ ...shared, limits, maxBodyBytes: config.request_body.max_bytes, shadow: shadow?.current });
  const decide = traced ? tracedDecider(decider) : decider;
  const app = createAppChecker({ ...shared, maxEntities: limits.maxEntities });
  const appApi = traced ? { ...app, check: tracedAppCheck(app.check) } : app;
  return { logger, clock, metrics, cache, issuers, verifier, policies, shadow, decide, appApi, limits };
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

async function trustedIssuers(config: Readonly<Config>, deps: { logger: Logger; clock: Clock; metrics: Metrics }, traced: boolean): Promise<TrustedIssuer[]> {
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
