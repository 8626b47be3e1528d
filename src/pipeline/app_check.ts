import { randomUUID } from 'node:crypto';
import { PortcullisError, isPortcullisError } from '../lib/errors.js';
import { cedarParseContext, cedarParseEntities, planResources, PRINCIPAL_TYPE, type PolicyJson, type ActivePolicySet, type CedarContext, type EntityJson } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { DpopError, TOKEN_ERROR_DESCRIPTIONS, type Principal, type TokenVerifier } from '../tokens/index.js';
import type { SenderConstraint } from './authenticate.js';
import type { Clock } from '../lib/clock.js';
import { principalEntitiesFor, requestEntities, entityKey } from './entities.js';
import { createDecisionRecorder } from './record.js';
import { planCondition, type Condition } from './plan.js';
import { DEFAULT_REQUEST_LIMITS, entityLimitExceeded } from './limits.js';
import type { DecisionLog } from './decision_log.js';
import { currentRequestContext, withRequestContext } from '../telemetry/request_context.js';

export interface AppEntity {
  type: string;
  id: string;
  attrs: Record<string, unknown> | undefined;
  parents: Array<{ type: string; id: string }>;
}

/** A direct question from an application; already validated for shape by the protocol layer. */
/** The DPoP proof an application received with a bound token, and the request it came with. */
export interface AppDpop {
  proof: string;
  method: string;
  url: string;
}

export interface AppCheckInput {
  principal: { token: string; dpop?: AppDpop | undefined } | { entity: AppEntity };
  items: Array<{ action: string; resource: AppEntity }>;
  context: CedarContext;
  entities: AppEntity[];
  requestId: string;
  /** W3C trace context (`traceparent`, `tracestate`) from the call's metadata, continued when tracing is on. */
  trace?: Readonly<Record<string, string>> | undefined;
}

export interface AppDecision {
  allow: boolean;
  reasons: readonly string[];
  errors: readonly string[];
  decisionId: string;
  policiesChecked: number;
}

export interface AppPlanInput {
  principal: AppCheckInput['principal'];
  action: string;
  resourceType: string;
  context: CedarContext;
  entities: AppEntity[];
  requestId: string;
}

export interface AppPlan {
  kind: 'always_allowed' | 'always_denied' | 'conditional';
  condition: Condition;
  residuals: Record<string, PolicyJson>;
  considered: readonly string[];
}

export interface AppCheckerOptions {
  verifier: TokenVerifier;
  policies: () => ActivePolicySet | undefined;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** DPoP proof checks; unset: DPoP-bound tokens are refused. */
  dpop?: SenderConstraint | undefined;
  /** Most entities one call may supply, and one decision may be evaluated with (`limits.max_entities`). */
  maxEntities?: number;
  decisionLog?: DecisionLog | undefined;
  /** The resource side of a decision (entity store lookup); replaced by a traced version when tracing is on. */
  resourceEntities?: typeof requestEntities;
}

/**
 * The app API's decisions: the same verifier, policy slices, entity building and decision cache
 * as the Envoy path. A token principal is built exactly as for ext_authz; an explicit principal
 * entity, extra entities and resource attributes are the calling application's word (entity
 * references and extension values are allowed there, unlike in token claims).
 */
export function createAppChecker({ verifier, policies, clock, metrics, logger, dpop, maxEntities = DEFAULT_REQUEST_LIMITS.maxEntities, decisionLog, resourceEntities = requestEntities }: AppCheckerOptions) {
  const limits = { ...DEFAULT_REQUEST_LIMITS, maxEntities };
  const record = createDecisionRecorder(metrics, logger, decisionLog);
  return {
    check: (input: AppCheckInput) => withRequestContext({ request_id: input.requestId }, () => check(input)),
    plan: (input: AppPlanInput) => withRequestContext({ request_id: input.requestId }, () => plan(input)),
  };

  /**
   * What Check and Plan share: the verified principal, the live set, the app's entities for the
   * whole call (checked once, with any resource entities the call supplies) and the context.
   */
  async function prepare(input: AppCheckInput | AppPlanInput, resources: EntityJson[]) {
    const principal = 'token' in input.principal ? await authenticate(input.principal.token, input.principal.dpop) : undefined;
    const active = policies();
    if (!active) throw new PortcullisError('ERR_POLICY_NOT_LOADED', 'no policy set is loaded');
    const supplied = input.entities.length + ('entity' in input.principal ? 1 : 0) + resources.length;
    const over = entityLimitExceeded(supplied, limits, 'the call supplies');
    if (over) throw over;
    const shared = [...input.entities, ...('entity' in input.principal ? [input.principal.entity] : [])].map(toEntity);
    if (shared.length || resources.length) checkEntities([...shared, ...resources]);
    const context = requestContext(input.context, principal, clock.now());
    const principalUid = 'entity' in input.principal ? { type: input.principal.entity.type, id: input.principal.entity.id } : { type: PRINCIPAL_TYPE, id: principal!.subject };
    return { principal, active, shared, context, principalUid, who: principalEntitiesFor(principal, active) };
  }

  async function check(input: AppCheckInput): Promise<AppDecision[]> {
    const ownResources = input.items.map((i) => (i.resource.attrs || i.resource.parents.length ? toEntity(i.resource) : undefined));
    const { principal, active, shared, context, principalUid, who } = await prepare(input, ownResources.filter((e): e is EntityJson => e !== undefined));
    const request = currentRequestContext();
    return input.items.map(({ action, resource }, n) => {
      const started = performance.now();
      const own = ownResources[n];
      const extra = own ? [...shared, own] : shared;
      const decisionId = randomUUID();
      if (request) request.decision_id = decisionId;
      const entities = merge(resourceEntities(who, resource.type, resource.id, active), extra, active);
      const over = entityLimitExceeded(entities.length + who.count - who.entities.length, limits);
      if (over) throw over;
      // A token principal is keyed like the Envoy path. The resource entity an item supplies (its
      // attributes and parents) joins the key as its JSON, so the same document asked about again
      // is answered from the cache and a changed attribute is a new key. Other app-supplied
      // entities (the call's `entities`, an explicit principal) are not cached.
      const base = principal && shared.length === 0 ? who.cacheKey : undefined;
      const cacheKey = base === undefined ? undefined : own ? `${base}\0${JSON.stringify(own)}` : base;
      const r = active.evaluate({ principal: principalUid, action, resource: { type: resource.type, id: resource.id }, context, entities, cacheKey });
      const d: AppDecision = { allow: r.allow, reasons: r.reasons, errors: r.errors, decisionId, policiesChecked: r.policiesChecked };
      // Every field written out (no spread): see DecisionRecord.
      record(
        {
          decisionId,
          requestId: input.requestId,
          source: 'app',
          allow: d.allow,
          status: d.allow ? 200 : 403,
          reason: d.allow ? undefined : 'forbidden',
          code: d.allow ? undefined : 'ERR_POLICY_DENIED',
          action,
          resourceType: resource.type,
          policiesChecked: d.policiesChecked,
          reasons: d.reasons,
          errors: d.errors,
          cached: r.cached,
          policyRevision: active.bundle.revision,
          limit: undefined,
          resourceId: resource.id,
          request: undefined,
          subject: principal?.subject ?? principalUid.id,
          issuer: principal?.issuer,
        },
        performance.now() - started,
      );
      return d;
    });
  }

  /** Which resources of a type the principal may act on: Cedar partial evaluation with the resource unknown. */
  async function plan(input: AppPlanInput): Promise<AppPlan> {
    const { active, shared, context, principalUid, who } = await prepare(input, []);
    active.checkKnown(input.action, input.resourceType);
    const entities = merge(who.entities, shared, active);
    const over = entityLimitExceeded(entities.length + who.count - who.entities.length, limits);
    if (over) throw over;
    const answer = planResources(active, principalUid, input.action, input.resourceType, context, entities);
    const condition = answer.decision === 'allow' ? { value: true } : answer.decision === 'deny' ? { value: false } : planCondition(answer.residuals, input.resourceType);
    const kind = 'value' in condition ? (condition.value === true ? 'always_allowed' : condition.value === false ? 'always_denied' : 'conditional') : 'conditional';
    logger.debug({ request_id: input.requestId, action: input.action, resource_type: input.resourceType, kind }, 'plan');
    return { kind, condition, residuals: answer.residuals, considered: answer.considered };
  }

  /** The token's principal; a DPoP-bound token needs a valid proof, exactly as on the ext_authz path. */
  async function authenticate(token: string, proof: AppDpop | undefined): Promise<Principal> {
    const principal = await verify(verifier, token);
    const refuse = (reason: string, message: string) => {
      metrics.dpopRejected.inc({ reason });
      return new PortcullisError('ERR_TOKEN_INVALID', message);
    };
    if (principal.boundJkt === undefined) {
      if (proof) throw new PortcullisError('ERR_TOKEN_INVALID', 'token is not DPoP-bound');
      return principal;
    }
    if (!proof) throw refuse('missing', 'DPoP-bound token without a DPoP proof');
    if (!dpop) throw new PortcullisError('ERR_TOKEN_INVALID', 'DPoP is disabled');
    try {
      await dpop.verify({ proofs: [proof.proof], method: proof.method, urls: [proof.url], accessToken: token, boundJkt: principal.boundJkt });
    } catch (err) {
      if (err instanceof DpopError) throw refuse(err.reason, 'invalid DPoP proof');
      throw err;
    }
    return principal;
  }

  /** Store entities first; the app's entities replace same-uid ones and bring their stored ancestors. */
  function merge(fromStore: EntityJson[], extra: EntityJson[], active: ActivePolicySet): EntityJson[] {
    if (extra.length === 0) return fromStore;
    const byKey = new Map<string, EntityJson>();
    for (const e of fromStore) byKey.set(entityKey(e), e);
    for (const e of extra) byKey.set(entityKey(e), e);
    for (const e of extra) {
      for (const p of e.parents) {
        const uid = '__entity' in p ? p.__entity : p;
        for (const a of active.bundle.entities.withAncestors(uid.type, uid.id)) if (!byKey.has(entityKey(a))) byKey.set(entityKey(a), a);
      }
    }
    return [...byKey.values()];
  }
}

async function verify(verifier: TokenVerifier, token: string) {
  try {
    return await verifier.verify(token);
  } catch (err) {
    if (!isPortcullisError(err)) throw err;
    throw new PortcullisError('ERR_TOKEN_INVALID', TOKEN_ERROR_DESCRIPTIONS[err.code] ?? 'invalid token', { cause: err });
  }
}

/**
 * The app's context over defaults for the keys the Envoy path always fills. With a token principal
 * the token-derived keys (authenticated, mfa, dpop, scopes, issuer, client_id) come from the verified
 * token and cannot be overridden by the caller, so an app cannot claim MFA the user did not do.
 */
function requestContext(app: CedarContext, principal: Principal | undefined, nowMs: number): CedarContext {
  const problem = Object.keys(app).length ? cedarParseContext(app) : undefined;
  if (problem) throw new PortcullisError('ERR_BAD_REQUEST', `invalid context: ${problem}`);
  const defaults: CedarContext = { time: Math.floor(nowMs / 1000), authenticated: false, mfa: false, dpop: false, scopes: [], issuer: '', client_id: '' };
  if (!principal) return { ...defaults, ...app };
  return { ...defaults, ...app, authenticated: true, mfa: principal.mfa, dpop: principal.boundJkt !== undefined, scopes: [...principal.scopes], issuer: principal.issuer, client_id: principal.clientId };
}

function toEntity(e: AppEntity): EntityJson {
  return { uid: { type: e.type, id: e.id }, attrs: (e.attrs ?? {}) as EntityJson['attrs'], parents: e.parents };
}

function checkEntities(entities: EntityJson[]): void {
  const problems = cedarParseEntities(entities);
  if (problems) throw new PortcullisError('ERR_BAD_REQUEST', `invalid entities: ${problems}`);
}
