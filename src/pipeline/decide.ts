import { randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import type { LimitExceeded } from '../lib/limits.js';
import { ANONYMOUS_ID, PRINCIPAL_TYPE, matchRoute, type ActivePolicySet, type CedarValueJson } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { withRequestContext } from '../telemetry/request_context.js';
import type { Principal, TokenVerifier } from '../tokens/index.js';
import { createAuthenticator, type SenderConstraint } from './authenticate.js';
import type { DecisionLog } from './decision_log.js';
import { buildContext, principalEntitiesFor, requestEntities } from './entities.js';
import { DEFAULT_REQUEST_LIMITS, entityLimitExceeded, headerLimitExceeded, type RequestLimits } from './limits.js';
import { createDecisionRecorder } from './record.js';
import { parseRequestBody } from './request_body.js';
import { parseRequestPath } from './request_path.js';
import { createShadowEvaluator } from './shadow.js';
import type { AuthzInput, Decision, Deny, DenyReason } from './types.js';

export interface DeciderOptions {
  verifier: TokenVerifier;
  /** The live policy set, or undefined before the first successful load. */
  policies: () => ActivePolicySet | undefined;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  realm?: string;
  /** Largest request body parsed into `context.body`. */
  maxBodyBytes?: number;
  /** A candidate policy set evaluated beside the active one (shadow mode); never changes answers. */
  shadow?: () => ActivePolicySet | undefined;
  /** DPoP proof checks; unset: DPoP-bound tokens are refused. */
  dpop?: SenderConstraint | undefined;
  /** Header and entity limits (config `limits`). */
  limits?: RequestLimits;
  /** Writes sampled decision records (observability.decision_log). */
  decisionLog?: DecisionLog | undefined;
  /** The resource side of a decision (entity store lookup); replaced by a traced version when tracing is on. */
  resourceEntities?: typeof requestEntities;
}

export type Decider = (input: AuthzInput) => Promise<Decision>;

/**
 * The decision pipeline: parse path -> authenticate -> route -> build entities -> evaluate.
 * Denials are values; internal failures (no policy set, engine error) throw a PortcullisError
 * so the protocol layer answers with an error status and never an allow.
 */
export function createDecider(o: DeciderOptions): Decider {
  const { verifier, policies, clock, metrics, logger, realm = 'portcullis', maxBodyBytes = 64 * 1024, shadow, dpop, limits = DEFAULT_REQUEST_LIMITS, decisionLog, resourceEntities = requestEntities } = o;
  const challenge = `Bearer realm="${realm}"`;
  const record = createDecisionRecorder(metrics, logger, decisionLog);
  const compareShadow = shadow ? createShadowEvaluator(shadow, metrics, logger) : undefined;
  const authenticate = createAuthenticator({ verifier, metrics, realm, dpop });

  function decide(input: AuthzInput, path: string, segments: string[], principal: Principal | undefined, body: CedarValueJson | undefined, decisionId: string): Decision {
    const active = policies();
    if (!active) throw new PortcullisError('ERR_POLICY_NOT_LOADED', 'no policy set is loaded');
    const match = matchRoute(active.bundle.routes, input.method, segments);
    if (!match) return deny(decisionId, 403, 'forbidden', 'ERR_NO_ROUTE', 'no route matches the request', undefined, { policyRevision: active.bundle.revision });
    const { route } = match;
    if (!principal && !route.anonymous) {
      return deny(decisionId, 401, 'unauthenticated', 'ERR_NO_CREDENTIAL', 'authentication required', challenge, { action: route.action, resourceType: route.resourceType, policyRevision: active.bundle.revision });
    }
    const who = principalEntitiesFor(principal, active);
    const principalUid = { type: PRINCIPAL_TYPE, id: principal ? principal.subject : ANONYMOUS_ID };
    const resource = { type: route.resourceType, id: match.resourceId };
    const entities = resourceEntities(who, resource.type, resource.id, active);
    const tooMany = entityLimitExceeded(who.count + entities.length - who.entities.length, limits);
    if (tooMany) return overLimit(decisionId, tooMany, { principal, action: route.action, resourceType: route.resourceType, policyRevision: active.bundle.revision });
    const context = buildContext(input, path, principal, clock.now(), body);
    const result = active.evaluate({ principal: principalUid, action: route.action, resource, context, entities, cacheKey: who.cacheKey });
    compareShadow?.({ principal, principalUid, action: route.action, resource, context, requestId: input.requestId, decisionId }, result);
    const outcome: DenyDetails = { policyRevision: active.bundle.revision, cached: result.cached, reasons: result.reasons, policiesChecked: result.policiesChecked, errors: result.errors, principal, action: route.action, resourceType: route.resourceType, resourceId: resource.id };
    if (!result.allow) return deny(decisionId, 403, 'forbidden', 'ERR_POLICY_DENIED', 'forbidden', undefined, outcome);
    return {
      decisionId,
      allow: true,
      status: 200,
      reasons: result.reasons,
      policiesChecked: result.policiesChecked,
      errors: result.errors,
      principal,
      action: route.action,
      resourceType: route.resourceType,
      resourceId: resource.id,
      cached: result.cached,
      policyRevision: active.bundle.revision,
    };
  }

  async function run(input: AuthzInput, decisionId: string): Promise<Decision> {
    const started = performance.now();
    const headersOver = headerLimitExceeded(input.headers, limits);
    const parsed = parseRequestPath(input.path);
    const body = parseRequestBody(input.body, input.headers.get('content-type')?.[0], maxBodyBytes);
    let decision: Decision;
    // Built whole where they are decided (decision id first): a decision spread into a new literal
    // copied its fields one by one on every Check.
    if (headersOver) {
      decision = overLimit(decisionId, headersOver);
    } else if (!parsed.ok) {
      decision = deny(decisionId, 400, 'bad_request', 'ERR_BAD_REQUEST', parsed.detail);
    } else if (!body.ok) {
      decision = deny(decisionId, 400, 'bad_request', 'ERR_BAD_REQUEST', body.detail, undefined, body.tooLarge ? { limit: 'request_body' } : {});
    } else {
      const authn = await authenticate(input);
      decision = 'deny' in authn ? deny(decisionId, authn.deny.status, authn.deny.reason, authn.deny.code, authn.deny.description, authn.deny.challenge) : decide(input, parsed.path, parsed.segments, authn.principal, body.value, decisionId);
    }
    const principal = decision.principal;
    // Every field written out: a spread of the decision plus overrides built a fresh hidden class
    // per call and cost ~10 µs, more than the rest of the pipeline around a cached decision.
    record(
      {
        decisionId,
        requestId: input.requestId,
        source: input.source,
        allow: decision.allow,
        status: decision.status,
        reason: decision.allow ? undefined : decision.reason,
        code: decision.allow ? undefined : decision.code,
        action: decision.action,
        resourceType: decision.resourceType,
        policiesChecked: decision.policiesChecked,
        reasons: decision.reasons,
        errors: decision.errors,
        cached: decision.cached ?? false,
        policyRevision: decision.policyRevision,
        limit: decision.allow ? undefined : decision.limit,
        resourceId: decision.resourceId,
        request: input,
        subject: principal?.subject,
        issuer: principal?.issuer,
      },
      performance.now() - started,
    );
    return decision;
  }

  return function check(input: AuthzInput): Promise<Decision> {
    const decisionId = randomUUID();
    // Every line logged while deciding (JWKS fetch, shadow disagreement, the decision) carries both ids.
    return withRequestContext({ request_id: input.requestId, decision_id: decisionId }, () => run(input, decisionId));
  };
}

/** A request over an input limit: 400, the limit named in the body and counted. */
function overLimit(decisionId: string, err: LimitExceeded, details: DenyDetails = {}): Deny {
  return deny(decisionId, 400, 'bad_request', err.code, err.message, undefined, { ...details, limit: err.limit });
}

/** What a denial may say beyond its status: whatever was known when it was decided. */
type DenyDetails = Partial<Pick<Deny, 'reasons' | 'policiesChecked' | 'errors' | 'principal' | 'action' | 'resourceType' | 'resourceId' | 'cached' | 'policyRevision' | 'limit'>>;

/**
 * A denial as one object literal of a fixed shape: a spread of a denial plus added fields costs a
 * new hidden class per call (microseconds each), and denials are what an attack sends.
 */
function deny(decisionId: string, status: Deny['status'], reason: DenyReason, code: string, description: string, challenge: string | undefined = undefined, d: DenyDetails = {}): Deny {
  return {
    decisionId,
    allow: false,
    status,
    reason,
    code,
    description,
    challenge,
    reasons: d.reasons ?? [],
    policiesChecked: d.policiesChecked ?? 0,
    errors: d.errors ?? [],
    principal: d.principal,
    action: d.action,
    resourceType: d.resourceType,
    resourceId: d.resourceId,
    cached: d.cached,
    policyRevision: d.policyRevision,
    limit: d.limit,
  };
}
