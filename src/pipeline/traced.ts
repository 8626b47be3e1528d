import { context, propagation, trace, type TextMapGetter } from '@opentelemetry/api';
import { inSpan } from '../telemetry/tracing.js';
import type { ActivePolicySet } from '../policy/index.js';
import type { TokenVerifier } from '../tokens/index.js';
import type { AppCheckInput, AppDecision } from './app_check.js';
import type { Decider } from './decide.js';
import type { requestEntities } from './entities.js';
import type { AuthzInput } from './types.js';

/**
 * Tracing decorators for the decision path, installed only when tracing is enabled (off, the
 * Check path runs no span code at all). The checked request's own `traceparent` continues the
 * caller's trace: client → Envoy → this decision → service in one trace.
 */
const tracer = trace.getTracer('portcullis');

/**
 * Whether spans started now would be recorded. A child of a span that is not recording is never
 * sampled (parent-based sampling), so for the unsampled requests the decorators below skip their
 * child spans and attributes altogether instead of building spans nobody exports.
 */
const recording = (): boolean => trace.getSpan(context.active())?.isRecording() === true;

const headerGetter: TextMapGetter<AuthzInput['headers']> = {
  get: (headers, key) => headers.get(key)?.[0],
  keys: (headers) => [...headers.keys()],
};

export function tracedDecider(decide: Decider): Decider {
  return (input) =>
    context.with(propagation.extract(trace.deleteSpan(context.active()), input.headers, headerGetter), () =>
      inSpan('auth.authz.check', { 'auth.authz.decision_source': input.source, 'http.request.method': input.method }, async (span) => {
        const d = await decide(input);
        if (!span.isRecording()) return d;
        span.setAttributes({
          'auth.authz.permitted': d.allow,
          'auth.authz.decision_id': d.decisionId,
          'auth.authz.policies_checked': d.policiesChecked,
          ...(d.action ? { 'auth.authz.action': d.action } : {}),
          ...(d.resourceType ? { 'auth.authz.resource_type': d.resourceType } : {}),
          ...(d.policyRevision ? { 'auth.policy.revision': d.policyRevision } : {}),
        });
        if (!d.allow) span.addEvent('authorization_denied', { 'auth.authz.deny_reason': d.reason, 'auth.authz.deny_code': d.code, 'http.response.status_code': d.status });
        return d;
      }),
    );
}

export function tracedVerifier(verifier: TokenVerifier): TokenVerifier {
  return {
    ...verifier,
    verify: (token) =>
      !recording()
        ? verifier.verify(token)
        : inSpan('auth.token.verify', {}, async (span) => {
            const principal = await verifier.verify(token);
            span.setAttributes({ 'auth.token.issuer': principal.issuer, 'auth.token.mfa': principal.mfa });
            return principal;
          }),
  };
}

/** The policy engine's evaluation (RBAC and resource rules are one Cedar evaluation) as `auth.authz.rbac_eval`. */
export function tracedPolicies(policies: () => ActivePolicySet | undefined): () => ActivePolicySet | undefined {
  let wrappedFor: ActivePolicySet | undefined;
  let wrapped: ActivePolicySet | undefined;
  return () => {
    const active = policies();
    if (active !== wrappedFor) {
      wrappedFor = active;
      wrapped = active && {
        bundle: active.bundle,
        generation: active.generation,
        checkKnown: (a, t) => active.checkKnown(a, t),
        evaluate(request) {
          if (!recording()) return active.evaluate(request);
          const span = tracer.startSpan('auth.authz.rbac_eval', { attributes: { 'auth.authz.action': request.action, 'auth.authz.resource_type': request.resource.type } }, context.active());
          try {
            const result = active.evaluate(request);
            span.setAttributes({ 'auth.authz.policies_checked': result.policiesChecked, 'auth.authz.permitted': result.allow, 'auth.authz.cached': result.cached });
            return result;
          } finally {
            span.end();
          }
        },
      };
    }
    return wrapped;
  };
}

/**
 * The resource side of a decision as `auth.authz.resource_check`: the resource entity and its
 * ancestors looked up in the entity store (with the attributes ownership rules read). It times the
 * lookup only; the rules themselves run inside the one Cedar evaluation (`auth.authz.rbac_eval`).
 */
export function tracedResourceEntities(lookup: typeof requestEntities): typeof requestEntities {
  return (principal, type, id, active) => {
    if (!recording()) return lookup(principal, type, id, active);
    const span = tracer.startSpan('auth.authz.resource_check', { attributes: { 'auth.authz.resource_type': type } }, context.active());
    try {
      const entities = lookup(principal, type, id, active);
      span.setAttributes({ 'auth.authz.resource_found': active.bundle.entities.withAncestors(type, id).length > 0, 'auth.authz.entities': entities.length });
      return entities;
    } finally {
      span.end();
    }
  };
}

const recordGetter: TextMapGetter<Readonly<Record<string, string>>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

/**
 * The app API's Check and BatchCheck as one `auth.authz.check` span per call (source `app`),
 * continuing the `traceparent` of the call's metadata; token verification, each item's resource
 * lookup and each item's evaluation are its children. A batch reports its size, whether every item
 * was permitted, the policies checked in total and every decision id.
 */
export function tracedAppCheck(check: (input: AppCheckInput) => Promise<AppDecision[]>): (input: AppCheckInput) => Promise<AppDecision[]> {
  return (input) =>
    context.with(propagation.extract(trace.deleteSpan(context.active()), input.trace ?? {}, recordGetter), () =>
      inSpan('auth.authz.check', { 'auth.authz.decision_source': 'app', 'auth.authz.batch_size': input.items.length }, async (span) => {
        const decisions = await check(input);
        if (!span.isRecording()) return decisions;
        const types = [...new Set(input.items.map((i) => i.resource.type))];
        const actions = [...new Set(input.items.map((i) => i.action))];
        span.setAttributes({
          'auth.authz.permitted': decisions.every((d) => d.allow),
          'auth.authz.policies_checked': decisions.reduce((n, d) => n + d.policiesChecked, 0),
          ...(decisions.length === 1 ? { 'auth.authz.decision_id': decisions[0]!.decisionId } : { 'auth.authz.decision_ids': decisions.map((d) => d.decisionId) }),
          ...(types.length === 1 ? { 'auth.authz.resource_type': types[0]! } : {}),
          ...(actions.length === 1 ? { 'auth.authz.action': actions[0]! } : {}),
        });
        if (decisions.some((d) => !d.allow)) span.addEvent('authorization_denied', { 'auth.authz.deny_reason': 'forbidden', 'auth.authz.denied_items': decisions.filter((d) => !d.allow).length });
        return decisions;
      }),
    );
}
