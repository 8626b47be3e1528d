import { PortcullisError } from '../lib/errors.js';
import { cedar, type CedarContext, type EntityJson } from './cedar.js';
import type { PolicyBundle } from './load.js';
import { sliceKey } from './slices.js';
import { ACTION_TYPE } from './vocabulary.js';

/** One Cedar question, already in Cedar's JSON shapes. */
export interface CedarRequest {
  principal: { type: string; id: string };
  action: string;
  resource: { type: string; id: string };
  context: CedarContext;
  entities: EntityJson[];
}

export interface EvaluationResult {
  allow: boolean;
  /** Ids of the determining policies. */
  reasons: string[];
  /** Policy evaluation errors (`<policy id>: <message>`); a policy that errors does not apply. */
  errors: string[];
  /** Size of the slice evaluated. */
  policiesChecked: number;
}

/** A policy bundle whose slices are preparsed inside cedar-wasm, ready to evaluate. */
export interface ActivePolicySet {
  readonly bundle: PolicyBundle;
  readonly generation: number;
  evaluate(request: CedarRequest): EvaluationResult;
}

interface PreparsedSlice {
  id: string | undefined;
  size: number;
  /** Context attributes to pass, or undefined for the whole context. */
  contextKeys: readonly string[] | undefined;
}

/**
 * Installs bundles into cedar-wasm. Preparsed sets can never be deleted, so ids alternate
 * between two generations: a new bundle is preparsed beside the live one and only replaces
 * it once every slice parsed. Memory stays bounded by twice the largest bundle.
 */
export function createPolicyEngine() {
  let generation = 0;
  return {
    install(bundle: PolicyBundle): ActivePolicySet {
      generation += 1;
      const gen = generation;
      const prefix = `g${gen % 2}`;
      const texts = new Map(bundle.policies.map((p) => [p.id, p.text]));
      const sets = new Map<string, string>();
      const slices = new Map<string, PreparsedSlice>();
      for (const [key, { ids, contextKeys }] of bundle.slices) {
        const setKey = ids.join('\u0000');
        let id = sets.get(setKey);
        if (id === undefined && ids.length) {
          id = `${prefix}:${sets.size}`;
          preparse(id, ids, texts);
          sets.set(setKey, id);
        }
        slices.set(key, { id, size: ids.length, contextKeys: contextKeys === 'all' ? undefined : [...contextKeys] });
      }
      return {
        bundle,
        generation: gen,
        evaluate: (request) => evaluate(slices, request),
      };
    },
  };
}

export type PolicyEngine = ReturnType<typeof createPolicyEngine>;

function preparse(id: string, ids: readonly string[], texts: ReadonlyMap<string, string>): void {
  const staticPolicies: Record<string, string> = {};
  for (const pid of ids) staticPolicies[pid] = texts.get(pid)!;
  const answer = cedar.preparsePolicySet(id, { staticPolicies });
  if (answer.type === 'failure') {
    throw new PortcullisError('ERR_POLICY_LOAD', `preparsing policy slice failed: ${answer.errors.map((e) => e.message).join('; ')}`);
  }
}

function evaluate(slices: ReadonlyMap<string, PreparsedSlice>, request: CedarRequest): EvaluationResult {
  const slice = slices.get(sliceKey(request.action, request.resource.type));
  if (!slice) throw new PortcullisError('ERR_POLICY_EVAL', `no policy slice for action "${request.action}" on ${request.resource.type}`);
  if (!slice.id) return { allow: false, reasons: [], errors: [], policiesChecked: 0 };
  const answer = cedar.statefulIsAuthorized({
    principal: request.principal,
    action: { type: ACTION_TYPE, id: request.action },
    resource: request.resource,
    context: slice.contextKeys ? pick(request.context, slice.contextKeys) : request.context,
    entities: request.entities,
    preparsedPolicySetId: slice.id,
  });
  if (answer.type === 'failure') {
    throw new PortcullisError('ERR_POLICY_EVAL', `cedar evaluation failed: ${answer.errors.map((e) => e.message).join('; ')}`);
  }
  const { decision, diagnostics } = answer.response;
  return {
    allow: decision === 'allow',
    reasons: diagnostics.reason,
    errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
    policiesChecked: slice.size,
  };
}

function pick(context: CedarContext, keys: readonly string[]): CedarContext {
  const out: CedarContext = {};
  for (const k of keys) if (k in context) out[k] = context[k]!;
  return out;
}
