import { randomUUID } from 'node:crypto';
import { PortcullisError, isPortcullisError } from '../lib/errors.js';
import { cedarParseContext, cedarParseEntities, PRINCIPAL_TYPE, type ActivePolicySet, type CedarContext, type EntityJson } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { TOKEN_ERROR_DESCRIPTIONS, type TokenVerifier } from '../tokens/index.js';
import { principalEntitiesFor, requestEntities, entityKey } from './entities.js';
import { createDecisionRecorder } from './record.js';

export interface AppEntity {
  type: string;
  id: string;
  attrs: Record<string, unknown> | undefined;
  parents: Array<{ type: string; id: string }>;
}

/** A direct question from an application; already validated for shape by the protocol layer. */
export interface AppCheckInput {
  principal: { token: string } | { entity: AppEntity };
  items: Array<{ action: string; resource: AppEntity }>;
  context: CedarContext;
  entities: AppEntity[];
  requestId: string;
}

export interface AppDecision {
  allow: boolean;
  reasons: readonly string[];
  errors: readonly string[];
  decisionId: string;
  policiesChecked: number;
}

export interface AppCheckerOptions {
  verifier: TokenVerifier;
  policies: () => ActivePolicySet | undefined;
  metrics: Metrics;
  logger: Logger;
}

/**
 * The app API's decisions: the same verifier, policy slices, entity building and decision cache
 * as the Envoy path. A token principal is built exactly as for ext_authz; an explicit principal
 * entity, extra entities and resource attributes are the calling application's word (entity
 * references and extension values are allowed there, unlike in token claims).
 */
export function createAppChecker({ verifier, policies, metrics, logger }: AppCheckerOptions) {
  const record = createDecisionRecorder(metrics, logger);
  return async function check(input: AppCheckInput): Promise<AppDecision[]> {
    const principal = 'token' in input.principal ? await verify(verifier, input.principal.token) : undefined;
    const active = policies();
    if (!active) throw new PortcullisError('ERR_POLICY_NOT_LOADED', 'no policy set is loaded');
    // Entities the app supplies for the whole call, checked once.
    const shared = [...input.entities, ...('entity' in input.principal ? [input.principal.entity] : [])].map(toEntity);
    const ownResources = input.items.map((i) => (i.resource.attrs || i.resource.parents.length ? toEntity(i.resource) : undefined));
    const supplied = [...shared, ...ownResources.filter((e): e is EntityJson => e !== undefined)];
    if (supplied.length) checkEntities(supplied);
    const contextProblem = Object.keys(input.context).length ? cedarParseContext(input.context) : undefined;
    if (contextProblem) throw new PortcullisError('ERR_BAD_REQUEST', `invalid context: ${contextProblem}`);
    const who = principalEntitiesFor(principal, active);
    const principalUid = 'entity' in input.principal ? { type: input.principal.entity.type, id: input.principal.entity.id } : { type: PRINCIPAL_TYPE, id: principal!.subject };
    return input.items.map(({ action, resource }, n) => {
      const started = performance.now();
      const own = ownResources[n];
      const extra = own ? [...shared, own] : shared;
      const entities = merge(requestEntities(who, resource.type, resource.id, active), extra, active);
      // Only the plain token case is keyed like the Envoy path; app-supplied entities are not cached.
      const cacheKey = principal && extra.length === 0 ? who.cacheKey : undefined;
      const r = active.evaluate({ principal: principalUid, action, resource: { type: resource.type, id: resource.id }, context: input.context, entities, cacheKey });
      const d: AppDecision = { allow: r.allow, reasons: r.reasons, errors: r.errors, decisionId: randomUUID(), policiesChecked: r.policiesChecked };
      record({ ...d, requestId: input.requestId, source: 'app', status: d.allow ? 200 : 403, reason: d.allow ? undefined : 'forbidden', code: d.allow ? undefined : 'ERR_POLICY_DENIED', action, resourceType: resource.type, cached: r.cached }, performance.now() - started);
      return d;
    });
  };

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

function toEntity(e: AppEntity): EntityJson {
  return { uid: { type: e.type, id: e.id }, attrs: (e.attrs ?? {}) as EntityJson['attrs'], parents: e.parents };
}

function checkEntities(entities: EntityJson[]): void {
  const problems = cedarParseEntities(entities);
  if (problems) throw new PortcullisError('ERR_BAD_REQUEST', `invalid entities: ${problems}`);
}
