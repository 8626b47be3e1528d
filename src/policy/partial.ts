import { PortcullisError } from '../lib/errors.js';
import { cedar, type CedarContext, type EntityJson, type PolicyJson } from './cedar.js';
import type { ActivePolicySet } from './engine.js';
import { computeSlice } from './load.js';
import { ACTION_TYPE } from './vocabulary.js';

export interface PartialAnswer {
  /** Known regardless of the resource, or undefined when it depends on it. */
  decision: 'allow' | 'deny' | undefined;
  /** Residual policies whose outcome depends on the resource, keyed by id. */
  residuals: Record<string, PolicyJson>;
  /** Ids of the slice's policies (what was considered). */
  considered: readonly string[];
}

/**
 * Cedar partial evaluation over the slice for (action, resource type), with the resource unknown.
 * The slice's policy texts are passed inline: cedar-wasm has no preparsed partial API, which is
 * acceptable for a call made once per query rather than once per row.
 */
export function planResources(active: ActivePolicySet, principal: { type: string; id: string }, action: string, resourceType: string, context: CedarContext, entities: EntityJson[]): PartialAnswer {
  const { bundle } = active;
  const { ids } = computeSlice(bundle, action, resourceType);
  if (ids.length === 0) return { decision: 'deny', residuals: {}, considered: [] };
  const texts = new Map(bundle.policies.map((p) => [p.id, p.text]));
  const answer = cedar.isAuthorizedPartial({
    principal,
    action: { type: ACTION_TYPE, id: action },
    resource: null,
    context,
    policies: { staticPolicies: Object.fromEntries(ids.map((id) => [id, texts.get(id)!])) },
    entities,
  });
  if (answer.type === 'failure') throw new PortcullisError('ERR_POLICY_EVAL', `partial evaluation failed: ${answer.errors.map((e) => e.message).join('; ')}`);
  const r = answer.response;
  const residuals = Object.fromEntries(r.nontrivialResiduals.map((id) => [id, r.residuals[id]!]));
  return { decision: r.decision ?? undefined, residuals, considered: ids };
}
