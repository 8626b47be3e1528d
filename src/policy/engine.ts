import { LRUCache } from 'lru-cache';
import { PortcullisError } from '../lib/errors.js';
import { cedar, uidKey, type CedarContext, type EntityJson } from './cedar.js';
import { computeSlice, type PolicyBundle, type PolicySlice } from './load.js';
import { sliceKey } from './slices.js';
import { ACTION_TYPE } from './vocabulary.js';

/** One Cedar question, already in Cedar's JSON shapes. */
export interface CedarRequest {
  principal: { type: string; id: string };
  action: string;
  resource: { type: string; id: string };
  context: CedarContext;
  entities: EntityJson[];
  /**
   * Identifies the principal and everything `entities` holds besides the resource's static
   * entities (which the bundle fixes). When given, the decision is cached under it together with
   * the action, the resource and the context attributes the slice reads.
   */
  cacheKey?: string;
}

export interface EvaluationResult {
  allow: boolean;
  /** Ids of the determining policies. */
  reasons: string[];
  /** Policy evaluation errors (`<policy id>: <message>`); a policy that errors does not apply. */
  errors: string[];
  /** Size of the policy slice the decision is based on. */
  policiesChecked: number;
  /** Answered from the decision cache (no engine call). */
  cached: boolean;
}

export interface PolicyEngineOptions {
  /** Decisions cached per installed bundle; 0 disables the cache. */
  decisionCacheSize: number;
  /** Prefix of this engine's preparsed set ids; engines sharing a thread need different ones. */
  namespace?: string;
}

/** A policy bundle whose slices are preparsed inside cedar-wasm, ready to evaluate. */
export interface ActivePolicySet {
  readonly bundle: PolicyBundle;
  readonly generation: number;
  evaluate(request: CedarRequest): EvaluationResult;
  /** Throws ERR_BAD_REQUEST when the schema declares no such action or resource type. */
  checkKnown(action: string, resourceType: string): void;
}

interface PreparsedSlice {
  id: string | undefined;
  size: number;
  /** Context attributes to pass, or undefined for the whole context. */
  contextKeys: readonly string[] | undefined;
  /** Position of each policy id in file order: Cedar reports determining policies as an unordered set. */
  order: ReadonlyMap<string, number>;
}

/**
 * Installs bundles into cedar-wasm. Preparsed sets can never be deleted, so ids alternate
 * between two generations: a new bundle is preparsed beside the live one and only replaces
 * it once every slice parsed. Memory stays bounded by twice the largest bundle.
 */
export function createPolicyEngine({ decisionCacheSize, namespace = 'p' }: PolicyEngineOptions = { decisionCacheSize: 0 }) {
  let generation = 0;
  return {
    /**
     * Preparses the bundle under the generation not in use and returns it; `prepare` (warm-up)
     * runs before the generation counts as taken. A bundle that fails here never advances the
     * counter, so the next attempt reuses the same ids and can never overwrite the live set's.
     */
    install(bundle: PolicyBundle, prepare?: (set: ActivePolicySet) => void): ActivePolicySet {
      const gen = generation + 1;
      const prefix = `${namespace}${gen % 2}`;
      const texts = new Map(bundle.policies.map((p) => [p.id, p.text]));
      const sets = new Map<string, string>();
      const slices = new Map<string, PreparsedSlice>();
      const add = (key: string, { ids, contextKeys }: PolicySlice): PreparsedSlice => {
        const setKey = ids.join('\u0000');
        let id = sets.get(setKey);
        if (id === undefined && ids.length) {
          id = `${prefix}:${sets.size}`;
          preparse(id, ids, texts);
          sets.set(setKey, id);
        }
        const slice = { id, size: ids.length, contextKeys: contextKeys === 'all' ? undefined : [...contextKeys], order: new Map(ids.map((p, i) => [p, i])) };
        slices.set(key, slice);
        return slice;
      };
      for (const [key, slice] of bundle.slices) add(key, slice);
      const routed = slices.size;
      // Pairs no route names (the app API) get their slice on first use, within a bound, since
      // preparsed sets are never freed.
      const sliceFor = (action: string, resourceType: string): PreparsedSlice => {
        const key = sliceKey(action, resourceType);
        const known = slices.get(key);
        if (known) return known;
        checkKnown(bundle, action, resourceType);
        if (slices.size - routed >= MAX_EXTRA_SLICES) throw new PortcullisError('ERR_BAD_REQUEST', `more than ${MAX_EXTRA_SLICES} distinct action and resource type pairs outside routes.yaml`);
        return add(key, computeSlice(bundle, action, resourceType));
      };
      // A fresh cache per bundle: a reload can never answer from decisions of the old set.
      const cache = decisionCacheSize > 0 ? new LRUCache<string, EvaluationResult>({ max: decisionCacheSize }) : undefined;
      const set: ActivePolicySet = {
        bundle,
        generation: gen,
        evaluate: (request) => evaluate(sliceFor, request, cache),
        checkKnown: (action, resourceType) => checkKnown(bundle, action, resourceType),
      };
      prepare?.(set);
      generation = gen;
      return set;
    },
  };
}

export type PolicyEngine = ReturnType<typeof createPolicyEngine>;

/** Slices created on first use, per installed bundle. */
export const MAX_EXTRA_SLICES = 256;

/** With a schema, only declared actions and entity types can be asked about. */
function checkKnown(bundle: PolicyBundle, action: string, resourceType: string): void {
  if (!bundle.schema) return;
  if (!bundle.schema.actions.has(uidKey(ACTION_TYPE, action))) throw new PortcullisError('ERR_BAD_REQUEST', `unknown action "${action}"`);
  if (!bundle.schema.attributes.has(resourceType)) throw new PortcullisError('ERR_BAD_REQUEST', `unknown resource type "${resourceType}"`);
}

function preparse(id: string, ids: readonly string[], texts: ReadonlyMap<string, string>): void {
  const staticPolicies: Record<string, string> = {};
  for (const pid of ids) staticPolicies[pid] = texts.get(pid)!;
  const answer = cedar.preparsePolicySet(id, { staticPolicies });
  if (answer.type === 'failure') {
    throw new PortcullisError('ERR_POLICY_LOAD', `preparsing policy slice failed: ${answer.errors.map((e) => e.message).join('; ')}`);
  }
}

const NO_POLICIES: EvaluationResult = Object.freeze({ allow: false, reasons: [], errors: [], policiesChecked: 0, cached: false });

function evaluate(sliceFor: (action: string, type: string) => PreparsedSlice, request: CedarRequest, cache: LRUCache<string, EvaluationResult> | undefined): EvaluationResult {
  const slice = sliceFor(request.action, request.resource.type);
  if (!slice.id) return NO_POLICIES;
  const context = slice.contextKeys ? pick(request.context, slice.contextKeys) : request.context;
  // The key holds every input the slice can read: action and resource type (the slice), resource
  // id (its static entities), the principal and its entities, and the context values it reads.
  const key = cache && request.cacheKey !== undefined ? `${request.action}\0${request.resource.type}\0${request.resource.id}\0${request.cacheKey}\0${JSON.stringify(context)}` : undefined;
  if (key !== undefined) {
    const hit = cache!.get(key);
    if (hit) return hit;
  }
  const result = authorize(slice, slice.id, request, context);
  if (key !== undefined) cache!.set(key, { ...result, cached: true });
  return result;
}

function authorize(slice: PreparsedSlice, id: string, request: CedarRequest, context: CedarContext): EvaluationResult {
  const answer = cedar.statefulIsAuthorized({
    principal: request.principal,
    action: { type: ACTION_TYPE, id: request.action },
    resource: request.resource,
    context,
    entities: request.entities,
    preparsedPolicySetId: id,
  });
  if (answer.type === 'failure') {
    throw new PortcullisError('ERR_POLICY_EVAL', `cedar evaluation failed: ${answer.errors.map((e) => e.message).join('; ')}`);
  }
  const { decision, diagnostics } = answer.response;
  return {
    allow: decision === 'allow',
    // In file order, so the same decision always reads the same (Cedar's set order varies by process).
    reasons: diagnostics.reason.length > 1 ? diagnostics.reason.sort((a, b) => (slice.order.get(a) ?? 0) - (slice.order.get(b) ?? 0)) : diagnostics.reason,
    errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
    policiesChecked: slice.size,
    cached: false,
  };
}

function pick(context: CedarContext, keys: readonly string[]): CedarContext {
  const out: CedarContext = {};
  for (const k of keys) if (k in context) out[k] = context[k]!;
  return out;
}
