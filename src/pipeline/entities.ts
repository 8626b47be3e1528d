import { isIP } from 'node:net';
import { ANONYMOUS_ID, isEmptyEntity, PRINCIPAL_TYPE, ROLE_TYPE, type ActivePolicySet, type CedarContext, type CedarValueJson, type EntityJson } from '../policy/index.js';
import type { Principal } from '../tokens/index.js';
import { toCedarRecord } from './cedar_values.js';
import type { AuthzInput } from './types.js';


/** Principal entities depend on the token and the policy set only: built once per pair. */
const principalEntities = new WeakMap<ActivePolicySet, WeakMap<Principal, PrincipalEntities>>();

export interface PrincipalEntities {
  entities: EntityJson[];
  /** `type\0id` of each entity, so resource entities already present are not passed twice. */
  keys: ReadonlySet<string>;
  /** The principal's id and entities as one string: its part of the decision-cache key. */
  cacheKey: string;
  /** Entities the principal brings to a decision: those passed, plus roles it names that are not stored. */
  count: number;
}

/** The anonymous principal has no attributes or parents, so no entity needs to be passed for it. */
const ANONYMOUS: PrincipalEntities = { entities: [], keys: new Set(), cacheKey: `${PRINCIPAL_TYPE}\0${ANONYMOUS_ID}\0anonymous`, count: 0 };

export function entityKey(e: EntityJson): string {
  const uid = '__entity' in e.uid ? e.uid.__entity : e.uid;
  return `${uid.type}\0${uid.id}`;
}

/**
 * The principal entity (claims as attributes, roles as parents) and each role's static ancestors.
 * With a schema, only the attributes it declares for User are passed: lean entities evaluate faster.
 */
export function principalEntitiesFor(principal: Principal | undefined, active: ActivePolicySet): PrincipalEntities {
  if (!principal) return ANONYMOUS;
  let perSet = principalEntities.get(active);
  if (!perSet) principalEntities.set(active, (perSet = new WeakMap()));
  const memo = perSet.get(principal);
  if (memo) return memo;
  const { bundle } = active;
  const declared = bundle.schema?.attributes.get(PRINCIPAL_TYPE);
  const user: EntityJson = {
    uid: { type: PRINCIPAL_TYPE, id: principal.subject },
    attrs: toCedarRecord(principal.claims, 0, declared),
    parents: principal.roles.map((id) => ({ type: ROLE_TYPE, id })),
  };
  const seen = new Set<EntityJson>();
  for (const role of principal.roles) for (const e of bundle.entities.withAncestors(ROLE_TYPE, role)) seen.add(e);
  const entities = isEmptyEntity(user) ? [...seen] : [user, ...seen];
  const keys = new Set(entities.map(entityKey));
  const unstoredRoles = new Set(principal.roles.filter((id) => !keys.has(`${ROLE_TYPE}\0${id}`))).size;
  const built = { entities, keys, cacheKey: `${PRINCIPAL_TYPE}\0${principal.subject}\0${JSON.stringify(entities)}`, count: entities.length + (isEmptyEntity(user) ? 1 : 0) + unstoredRoles };
  perSet.set(principal, built);
  return built;
}

/**
 * The request's entities: the principal's, then the resource's static entity and ancestors unless
 * already present. A resource absent from the store is not passed at all (same meaning, less cost).
 */
export function requestEntities(principal: PrincipalEntities, type: string, id: string, active: ActivePolicySet): EntityJson[] {
  const resource = active.bundle.entities.withAncestors(type, id);
  if (resource.length === 0) return principal.entities;
  const out = principal.entities.slice();
  for (const e of resource) if (!principal.keys.has(entityKey(e))) out.push(e);
  return out;
}

export function buildContext(input: AuthzInput, path: string, principal: Principal | undefined, nowMs: number, body?: CedarValueJson): CedarContext {
  const context: CedarContext = {
    method: input.method,
    path,
    host: input.host,
    scheme: input.scheme,
    request_id: input.requestId,
    time: Math.floor(nowMs / 1000),
    authenticated: principal !== undefined,
    scopes: principal ? [...principal.scopes] : [],
    mfa: principal?.mfa ?? false,
    dpop: principal?.boundJkt !== undefined,
    issuer: principal?.issuer ?? '',
    client_id: principal?.clientId ?? '',
    peer_principal: input.peerPrincipal,
    context_extensions: toCedarRecord(input.contextExtensions),
  };
  if (isIP(input.sourceAddress)) context.ip = { __extn: { fn: 'ip', arg: input.sourceAddress } };
  if (body !== undefined) context.body = body;
  return context;
}
