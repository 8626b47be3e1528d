import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets (seconds) fit for sub-millisecond decisions and slow outliers alike. */
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const FETCH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LOGIN_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const POLICY_COUNT_BUCKETS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000];

/**
 * The metric catalog, declared once. Labels are bounded sets: configured issuer names,
 * resource types from routes.yaml, fixed reason enums. Never user ids, tokens or raw paths.
 */
/** What `/metrics` and the OTLP push read: one registry, or (with cluster workers) all of them merged. */
export type MetricsSource = Pick<Registry, 'contentType' | 'metrics' | 'getMetricsAsJSON'>;

export function createMetrics(registry: Registry = new Registry(), options: { defaultMetrics?: boolean } = {}) {
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    authzDecisions: new Counter({ name: 'auth_authz_decisions_total', help: 'Authorization decisions', labelNames: ['permitted', 'resource_type', 'source'] as const, registers: r }),
    authzLatency: new Histogram({ name: 'auth_authz_latency_seconds', help: 'Time to answer one check, from parsed request to decision', labelNames: ['source'] as const, buckets: FAST_BUCKETS, registers: r }),
    policiesEvaluated: new Histogram({ name: 'auth_authz_policies_evaluated', help: 'Policies in the slice evaluated for one decision', buckets: POLICY_COUNT_BUCKETS, registers: r }),
    authzDenied: new Counter({ name: 'auth_authz_denied_total', help: 'Denied checks by reason', labelNames: ['reason'] as const, registers: r }),
    decisionCacheHits: new Counter({ name: 'auth_authz_decision_cache_hits_total', help: 'Decisions answered from the decision cache (same slice, principal, resource and context inputs)', registers: r }),
    authzShed: new Counter({ name: 'auth_authz_shed_total', help: "Checks not decided because the caller's deadline had passed before they started (overload); answered DEADLINE_EXCEEDED", labelNames: ['source'] as const, registers: r }),
    authzErrors: new Counter({ name: 'auth_authz_errors_total', help: 'Checks that failed internally (answered with a gRPC error status)', labelNames: ['code'] as const, registers: r }),
    limitExceeded: new Counter({ name: 'auth_limit_exceeded_total', help: 'Inputs refused for exceeding a configured limit (header_count, header_bytes, request_body, token, entities, jwks_document, policy_file)', labelNames: ['limit'] as const, registers: r }),
    tokenVerifyLatency: new Histogram({ name: 'auth_token_verify_latency_seconds', help: 'Token verification time (cache misses)', labelNames: ['issuer'] as const, buckets: FAST_BUCKETS, registers: r }),
    tokenCacheHits: new Counter({ name: 'auth_token_cache_hits_total', help: 'Tokens answered from the verified-token cache', registers: r }),
    dpopRejected: new Counter({ name: 'auth_dpop_proofs_rejected_total', help: 'Refused DPoP proofs (token endpoint, ext_authz, app API, userinfo) by reason', labelNames: ['reason'] as const, registers: r }),
    tokenRejected: new Counter({ name: 'auth_token_rejected_total', help: 'Rejected tokens by reason', labelNames: ['reason'] as const, registers: r }),
    jwksFetchDuration: new Histogram({ name: 'auth_jwks_fetch_duration_seconds', help: 'JWKS (and discovery) fetch time', labelNames: ['issuer'] as const, buckets: FETCH_BUCKETS, registers: r }),
    jwksFetchErrors: new Counter({ name: 'auth_jwks_fetch_errors_total', help: 'Failed JWKS fetches', labelNames: ['issuer', 'reason'] as const, registers: r }),
    jwksKeys: new Gauge({ name: 'auth_jwks_keys', help: 'Usable keys held for the issuer (with workers: the fewest any process holds)', labelNames: ['issuer'] as const, registers: r, aggregator: 'min' }),
    jwksUnknownKidRefetch: new Counter({ name: 'auth_jwks_unknown_kid_refetch_total', help: 'JWKS refetches triggered by an unknown kid', labelNames: ['issuer'] as const, registers: r }),
    policyReloads: new Counter({ name: 'auth_policy_reload_total', help: 'Policy set loads', labelNames: ['result', 'set'] as const, registers: r }),
    shadowDisagreements: new Counter({ name: 'auth_policy_shadow_disagreements_total', help: 'Decisions where the shadow policy set disagreed with the active one', labelNames: ['active', 'shadow'] as const, registers: r }),
    loginAttempts: new Counter({ name: 'auth_login_attempts_total', help: 'Login attempts by first-factor method and client type (api: /login, browser: login page)', labelNames: ['method', 'client_type'] as const, registers: r }),
    loginFailures: new Counter({ name: 'auth_login_failures_total', help: 'Failed logins by method and reason (reasons are never sent to clients)', labelNames: ['method', 'reason'] as const, registers: r }),
    loginLatency: new Histogram({ name: 'auth_login_latency_seconds', help: 'Time to answer one login step', labelNames: ['method'] as const, buckets: LOGIN_BUCKETS, registers: r }),
    mfaAttempts: new Counter({ name: 'auth_mfa_attempts_total', help: 'Second-factor attempts by method (totp, backup_code)', labelNames: ['method'] as const, registers: r }),
    loginLockouts: new Counter({ name: 'auth_login_lockouts_total', help: 'Accounts locked after repeated failed logins', registers: r }),
    loginRateLimited: new Counter({ name: 'auth_login_rate_limited_total', help: 'Login attempts refused by the per-client-IP rate limit', registers: r }),
    cacheErrors: new Counter({ name: 'auth_cache_errors_total', help: 'Failed calls to the shared cache by operation (increment: a rate limit let the request through; publish: other replicas learn of the change on their next reload)', labelNames: ['operation'] as const, registers: r }),
    tokenIssuance: new Histogram({ name: 'auth_token_issuance_duration_seconds', help: 'Time to issue tokens by grant type', labelNames: ['grant_type'] as const, buckets: LOGIN_BUCKETS, registers: r }),
    oauthErrors: new Counter({ name: 'auth_oauth_errors_total', help: 'OAuth error responses by endpoint and error code', labelNames: ['endpoint', 'error'] as const, registers: r }),
    refreshReuse: new Counter({ name: 'auth_refresh_token_reuse_total', help: 'Reuses of a rotated refresh token (each revokes its family)', registers: r }),
    // Gauges that cluster workers also hold (unset there: 0) say how they merge into the primary's /metrics.
    signingKeyCreated: new Gauge({ name: 'auth_signing_key_created_timestamp_seconds', help: 'Creation time of the token signing key in use (alert when it gets old)', registers: r, aggregator: 'max' }),
    upstreamTokenRefresh: new Counter({ name: 'auth_upstream_token_refresh_total', help: 'Brokered refreshes of stored upstream provider tokens by provider and outcome (success, failed)', labelNames: ['provider', 'outcome'] as const, registers: r }),
    decisionLogDropped: new Counter({ name: 'auth_decision_log_dropped_total', help: 'Decision log records dropped by the rate cap (observability.decision_log.max_per_second)', registers: r }),
    storeUp: new Gauge({ name: 'auth_store_up', help: 'Whether the store answered its last health ping (1) or not (0)', registers: r, aggregator: 'max' }),
    unhandledErrors: new Counter({ name: 'auth_unhandled_errors_total', help: 'Errors no handler caught, by kind (rejection: logged, the process keeps serving; exception: the process drains and exits 1)', labelNames: ['kind'] as const, registers: r }),
    workers: new Gauge({ name: 'auth_workers', help: 'Cluster workers serving gRPC (workers: N) by state (starting, ready, stopping)', labelNames: ['state'] as const, registers: r }),
    workerRestarts: new Counter({ name: 'auth_worker_restarts_total', help: 'Cluster workers started again after one exited unexpectedly', registers: r }),
    keyRotations: new Counter({ name: 'auth_key_rotation_total', help: 'Signing key rotations by trigger (cli, admin, schedule)', labelNames: ['trigger'] as const, registers: r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Memoizes labelled children of a metric: prom-client hashes the label object on every call,
 * which costs microseconds on the decision path. Label sets are bounded, so the map is too.
 */
export function childCache<T>(make: (...values: string[]) => T): (...values: string[]) => T {
  const children = new Map<string, T>();
  return (...values: string[]) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (!child) {
      child = make(...values);
      children.set(key, child);
    }
    return child;
  };
}
