import { matchRoute, sliceKeyOf, type ActivePolicySet, type EntityJson } from '../policy/index.js';
import type { Principal, TokenVerifier } from '../tokens/index.js';
import { extractCredential } from '../tokens/index.js';
import type { Decider } from './decide.js';
import { buildContext, principalEntitiesFor, requestEntities } from './entities.js';
import { parseRequestPath } from './request_path.js';
import { parseRequestBody } from './request_body.js';
import type { AuthzInput } from './types.js';

export interface Explanation {
  request: { method: string; path: string; decodedPath?: string; query?: string; pathError?: string };
  authentication: { credential: string; subject?: string; issuer?: string; roles?: readonly string[]; scopes?: readonly string[]; mfa?: boolean; error?: string };
  route?: { index: number; action: string; resource: { type: string; id: string }; anonymous: boolean } | 'none';
  slice?: { key: string; policies: readonly string[] };
  entities?: EntityJson[];
  context?: Record<string, unknown>;
  decision: { allow: boolean; status: number; reason?: string; determiningPolicies: readonly string[]; errors: readonly string[]; policiesChecked: number; decisionId: string };
}

/**
 * One decision, explained: the decision itself comes from the live decider; the steps leading to
 * it (path parsing, credential, route, slice, entities, context) are recomputed with the same
 * functions for display.
 */
export async function explainDecision(input: AuthzInput, decide: Decider, verifier: TokenVerifier, active: ActivePolicySet, nowMs: number): Promise<Explanation> {
  const d = await decide(input);
  const parsed = parseRequestPath(input.path);
  const out: Explanation = {
    request: parsed.ok ? { method: input.method, path: input.path, decodedPath: parsed.path, query: parsed.query } : { method: input.method, path: input.path, pathError: parsed.detail },
    authentication: { credential: 'none' },
    decision: { allow: d.allow, status: d.status, ...(d.allow ? {} : { reason: `${d.reason} (${d.code}): ${d.description}` }), determiningPolicies: d.reasons, errors: d.errors, policiesChecked: d.policiesChecked, decisionId: d.decisionId },
  };
  const credential = extractCredential(input.headers.get('authorization'));
  let principal: Principal | undefined;
  if (credential.kind === 'bearer' || credential.kind === 'dpop') {
    try {
      principal = await verifier.verify(credential.token);
      out.authentication = { credential: credential.kind, subject: principal.subject, issuer: principal.issuer, roles: principal.roles, scopes: principal.scopes, mfa: principal.mfa };
    } catch (err) {
      out.authentication = { credential: credential.kind, error: (err as Error).message };
    }
  } else if (credential.kind === 'invalid') {
    out.authentication = { credential: 'invalid', error: credential.detail };
  }
  if (!parsed.ok) return out;
  const match = matchRoute(active.bundle.routes, input.method, parsed.segments);
  if (!match) {
    out.route = 'none';
    return out;
  }
  out.route = { index: match.index, action: match.route.action, resource: { type: match.route.resourceType, id: match.resourceId }, anonymous: match.route.anonymous };
  const key = sliceKeyOf(match.route.action, match.route.resourceType);
  out.slice = { key, policies: active.bundle.slices.get(key)?.ids ?? [] };
  out.entities = requestEntities(principalEntitiesFor(principal, active), match.route.resourceType, match.resourceId, active);
  const body = parseRequestBody(input.body, input.headers.get('content-type')?.[0], Number.MAX_SAFE_INTEGER);
  out.context = buildContext(input, parsed.path, principal, nowMs, body.ok ? body.value : undefined);
  return out;
}
