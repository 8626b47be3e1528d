import { PortcullisError } from '../lib/errors.js';
import { cedar, describeCedarErrors, lineCol, type PolicyJson } from './cedar.js';
import { contextKeysOf, type ContextKeys } from './context_usage.js';

/** One static policy as loaded from a `.cedar` file. */
export interface PolicyRecord {
  /** The `@id` annotation, or `<file>#<n>` when it has none. */
  id: string;
  text: string;
  file: string;
  /** `line:col` of the policy inside its file. */
  position: string;
  /** Offset of the policy text inside its file, to place validator errors. */
  offset: number;
  scope: Pick<PolicyJson, 'effect' | 'principal' | 'action' | 'resource'>;
  /** Context attributes the policy reads. */
  contextKeys: ContextKeys;
}

/** Splits one `.cedar` file into policies; throws ERR_POLICY_LOAD with `file:line:col` problems. */
export function parsePolicyFile(file: string, text: string): PolicyRecord[] {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') throw new PortcullisError('ERR_POLICY_LOAD', describeCedarErrors(file, text, parts.errors).join('\n'));
  if (parts.policy_templates.length) {
    throw new PortcullisError('ERR_POLICY_LOAD', `${file}: policy templates are not supported yet (${parts.policy_templates.length} found)`);
  }
  // cedar-wasm returns the policies ordered by its internal ids as strings (policy0, policy1,
  // policy10, policy2, ...), not in file order: place each text in the file, then sort by position.
  const taken = new Set<number>();
  const located = parts.policies.map((policyText) => ({ policyText, offset: locate(text, policyText, taken) }));
  located.sort((a, b) => a.offset - b.offset);
  return located.map(({ policyText, offset }, n) => {
    const json = cedar.policyToJson(policyText);
    if (json.type === 'failure') throw new PortcullisError('ERR_POLICY_LOAD', describeCedarErrors(file, text, json.errors, offset).join('\n'));
    const { effect, principal, action, resource, annotations, conditions } = json.json;
    return {
      id: annotations?.id ?? `${file}#${n}`,
      text: policyText,
      file,
      position: lineCol(text, offset),
      offset,
      scope: { effect, principal, action, resource },
      contextKeys: contextKeysOf(conditions),
    };
  });
}

/** Offset of the first occurrence of `part` in `text` not already taken (identical policies are distinct occurrences). */
function locate(text: string, part: string, taken: Set<number>): number {
  for (let from = 0; ; ) {
    const at = text.indexOf(part, from);
    if (at === -1) return 0;
    if (!taken.has(at)) {
      taken.add(at);
      return at;
    }
    from = at + 1;
  }
}

/** Checks ids are unique and, when a schema is given, validates every policy in strict mode. */
export function checkPolicies(policies: readonly PolicyRecord[], schemaText: string | undefined, sources: ReadonlyMap<string, string>): void {
  const problems: string[] = [];
  const seen = new Map<string, PolicyRecord>();
  for (const p of policies) {
    const prior = seen.get(p.id);
    if (prior) problems.push(`${p.file}:${p.position} duplicate policy id "${p.id}" (first at ${prior.file}:${prior.position})`);
    seen.set(p.id, p);
  }
  if (problems.length === 0 && schemaText !== undefined && policies.length > 0) {
    const answer = cedar.validate({
      schema: schemaText,
      policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') {
      problems.push(...describeCedarErrors('schema.cedarschema', schemaText, answer.errors));
    } else {
      for (const v of answer.validationErrors) {
        const p = seen.get(v.policyId);
        problems.push(...(p ? describeCedarErrors(p.file, sources.get(p.file) ?? '', [v.error], p.offset) : [`${v.policyId}: ${v.error.message}`]));
      }
    }
  }
  if (problems.length) throw new PortcullisError('ERR_POLICY_LOAD', problems.join('\n'));
}
