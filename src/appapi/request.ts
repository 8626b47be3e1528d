import type { BatchCheckRequest, CheckRequest, Entity, PlanRequest, Principal } from '../gen/portcullis/authz/v1/authorizer_pb.js';
import type { AppCheckInput, AppEntity, AppPlanInput } from '../pipeline/app_check.js';
import type { CedarContext } from '../policy/index.js';

export const MAX_BATCH_ITEMS = 1000;

/** A request field that is missing or malformed; the message names the field path. */
export class InvalidField extends Error {}

/** portcullis.authz.v1 requests as AppCheckInput. Pure; the protobuf types stop here. */
export function fromCheckRequest(r: CheckRequest): AppCheckInput {
  return {
    principal: principal(r.principal),
    items: [{ action: required(r.action, 'action'), resource: entity(r.resource, 'resource') }],
    context: (r.context ?? {}) as CedarContext,
    entities: r.entities.map((e, i) => entity(e, `entities[${i}]`)),
    requestId: r.requestId,
  };
}

export function fromBatchCheckRequest(r: BatchCheckRequest): AppCheckInput {
  if (r.items.length === 0) throw new InvalidField('items: at least one item is required');
  if (r.items.length > MAX_BATCH_ITEMS) throw new InvalidField(`items: at most ${MAX_BATCH_ITEMS} items per call`);
  return {
    principal: principal(r.principal),
    items: r.items.map((item, i) => ({ action: required(item.action, `items[${i}].action`), resource: entity(item.resource, `items[${i}].resource`) })),
    context: (r.context ?? {}) as CedarContext,
    entities: r.entities.map((e, i) => entity(e, `entities[${i}]`)),
    requestId: r.requestId,
  };
}

export function fromPlanRequest(r: PlanRequest): AppPlanInput {
  return {
    principal: principal(r.principal),
    action: required(r.action, 'action'),
    resourceType: required(r.resourceType, 'resource_type'),
    context: (r.context ?? {}) as CedarContext,
    entities: r.entities.map((e, i) => entity(e, `entities[${i}]`)),
    requestId: r.requestId,
  };
}

function principal(p: Principal | undefined): AppCheckInput['principal'] {
  switch (p?.kind.case) {
    case 'token':
      return { token: required(p.kind.value, 'principal.token'), dpop: p.dpop && { proof: required(p.dpop.proof, 'principal.dpop.proof'), method: required(p.dpop.method, 'principal.dpop.method'), url: required(p.dpop.url, 'principal.dpop.url') } };
    case 'entity':
      if (p.dpop) throw new InvalidField('principal.dpop: only with a token');
      return { entity: entity(p.kind.value, 'principal.entity') };
    default:
      throw new InvalidField('principal: give a token or an entity');
  }
}

function entity(e: Entity | undefined, path: string): AppEntity {
  if (!e) throw new InvalidField(`${path}: required`);
  return {
    type: required(e.type, `${path}.type`),
    id: required(e.id, `${path}.id`),
    attrs: e.attributes,
    parents: e.parents.map((p, i) => ({ type: required(p.type, `${path}.parents[${i}].type`), id: required(p.id, `${path}.parents[${i}].id`) })),
  };
}

function required(value: string, path: string): string {
  if (!value) throw new InvalidField(`${path}: required`);
  return value;
}
