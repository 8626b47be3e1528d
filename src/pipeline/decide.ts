import { randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { PortcullisError, isPortcullisError } from '../lib/errors.js';
import { ANONYMOUS_ID, PRINCIPAL_TYPE, matchRoute, type ActivePolicySet, type CedarValueJson } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { createDecisionRecorder } from './record.js';
import type { DecisionLog } from './decision_log.js';
import { withRequestContext } from '../telemetry/request_context.js';
import { TOKEN_ERROR_DESCRIPTIONS, extractCredential, type Principal, type TokenVerifier } from '../tokens/index.js';
import { buildContext, principalEntitiesFor, requestEntities } from './entities.js';
import { parseRequestPath } from './request_path.js';
import { parseRequestBody } from './request_body.js';
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
  /** Writes sampled decision records (observability.decision_log). */
  decisionLog?: DecisionLog | undefined;
  /** The resource side of a decision (entity store lookup); replaced by a traced version when tracing is on. */
  resourceEntities?: typeof requestEntities;
}

export type Decider = (input: AuthzInput) => Promise<Decision>;

type Pending<T> = T extends unknown ? Omit<T, 'decisionId'> : never;
type Authn = { principal: Principal | undefined } | { deny: Pending<Deny> };

/**
 * The decision pipeline: parse path -> authenticate -> route -> build entities -> evaluate.
 * Denials are values; internal failures (no policy set, engine error) throw a PortcullisError
 * so the protocol layer answers with an error status and never an allow.
 */
export function createDecider({ verifier, policies, clock, metrics, logger, realm = 'portcullis', maxBodyBytes = 64 * 1024, shadow, decisionLog, resourceEntities = requestEntities }: DeciderOptions): Decider {
  const challenge = `Bearer realm="${realm}"`;
  const record = createDecisionRecorder(metrics, logger, decisionLog);
  const compareShadow = shadow ? createShadowEvaluator(shadow, metrics, logger) : undefined;

  async function authenticate(input: AuthzInput): Promise<Authn> {
    const credential = extractCredential(input.headers.get('authorization'));
    if (credential.kind === 'none') return { principal: undefined };
    if (credential.kind === 'invalid') return { deny: invalidToken('ERR_TOKEN_MALFORMED', 'invalid authorization header') };
    try {
      return { principal: await verifier.verify(credential.token) };
    } catch (err) {
      if (!isPortcullisError(err)) throw err;
      return { deny: invalidToken(err.code, TOKEN_ERROR_DESCRIPTIONS[err.code] ?? 'invalid token') };
    }
  }

  function invalidToken(code: string, description: string): Pending<Deny> {
    return deny(401, 'invalid_token', code, description, `${challenge}, error="invalid_token", error_description="${description}"`);
  }

  function decide(input: AuthzInput, path: string, segments: string[], principal: Principal | undefined, body: CedarValueJson | undefined, decisionId: string): Pending<Decision> {
    const active = policies();
    if (!active) throw new PortcullisError('ERR_POLICY_NOT_LOADED', 'no policy set is loaded');
    const match = matchRoute(active.bundle.routes, input.method, segments);
    if (!match) return { ...deny(403, 'forbidden', 'ERR_NO_ROUTE', 'no route matches the request'), policyRevision: active.bundle.revision };
    const { route } = match;
    if (!principal && !route.anonymous) {
      return { ...deny(401, 'unauthenticated', 'ERR_NO_CREDENTIAL', 'authentication required', challenge), action: route.action, resourceType: route.resourceType, policyRevision: active.bundle.revision };
    }
    const who = principalEntitiesFor(principal, active);
    const principalUid = { type: PRINCIPAL_TYPE, id: principal ? principal.subject : ANONYMOUS_ID };
    const resource = { type: route.resourceType, id: match.resourceId };
    const context = buildContext(input, path, principal, clock.now(), body);
    const result = active.evaluate({ principal: principalUid, action: route.action, resource, context, entities: resourceEntities(who, resource.type, resource.id, active), cacheKey: who.cacheKey });
    compareShadow?.({ principal, principalUid, action: route.action, resource, context, requestId: input.requestId, decisionId }, result);
    const common = { policyRevision: active.bundle.revision, cached: result.cached, reasons: result.reasons, policiesChecked: result.policiesChecked, errors: result.errors, principal, action: route.action, resourceType: route.resourceType, resourceId: resource.id };
    if (result.allow) return { allow: true, status: 200, ...common };
    return { ...deny(403, 'forbidden', 'ERR_POLICY_DENIED', 'forbidden'), ...common };
  }

  return function check(input: AuthzInput): Promise<Decision> {
    const decisionId = randomUUID();
    // Every line logged while deciding (JWKS fetch, shadow disagreement, the decision) carries both ids.
    return withRequestContext({ request_id: input.requestId, decision_id: decisionId }, () => run(input, decisionId));
  };

  async function run(input: AuthzInput, decisionId: string): Promise<Decision> {
    const started = performance.now();
    const parsed = parseRequestPath(input.path);
    const body = parseRequestBody(input.body, input.headers.get('content-type')?.[0], maxBodyBytes);
    let decision: Decision;
    if (!parsed.ok) {
      decision = { decisionId, ...deny(400, 'bad_request', 'ERR_BAD_REQUEST', parsed.detail) };
    } else if (!body.ok) {
      decision = { decisionId, ...deny(400, 'bad_request', 'ERR_BAD_REQUEST', body.detail) };
    } else {
      const authn = await authenticate(input);
      decision = { decisionId, ...('deny' in authn ? authn.deny : decide(input, parsed.path, parsed.segments, authn.principal, body.value, decisionId)) };
    }
    const principal = decision.principal;
    record({ ...decision, requestId: input.requestId, source: input.source, cached: decision.cached ?? false, request: input, subject: principal?.subject, issuer: principal?.issuer }, performance.now() - started);
    return decision;
  }

}

function deny(status: Deny['status'], reason: DenyReason, code: string, description: string, challenge?: string): Pending<Deny> {
  return { allow: false, status, reason, code, description, challenge, reasons: [], policiesChecked: 0, errors: [], principal: undefined, action: undefined, resourceType: undefined };
}
