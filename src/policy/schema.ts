import { cedar, describeCedarErrors, type SchemaJson } from './cedar.js';
import { PortcullisError } from '../lib/errors.js';

/** What the rest of Portcullis needs to know from a Cedar schema. */
export interface SchemaInfo {
  /** The schema text, passed to the validator. */
  text: string;
  /** Entity type name -> declared attribute names (lean entities carry only these). */
  attributes: ReadonlyMap<string, ReadonlySet<string>>;
  /** Action uid key (`Action::"read"`) -> uid keys of the action groups it belongs to, transitively. */
  actionAncestors: ReadonlyMap<string, ReadonlySet<string>>;
  /** Action uid keys the schema declares. */
  actions: ReadonlySet<string>;
}

export function parseSchema(file: string, text: string): SchemaInfo {
  const answer = cedar.schemaToJson(text);
  if (answer.type === 'failure') {
    throw new PortcullisError('ERR_POLICY_LOAD', describeCedarErrors(file, text, answer.errors).join('\n'));
  }
  return { text, ...summarise(answer.json) };
}

function summarise(json: SchemaJson<string>): Omit<SchemaInfo, 'text'> {
  const attributes = new Map<string, Set<string>>();
  const parents = new Map<string, string[]>();
  for (const [ns, def] of Object.entries(json)) {
    const q = (name: string) => (ns ? `${ns}::${name}` : name);
    for (const [name, type] of Object.entries(def.entityTypes ?? {})) {
      const shape = 'shape' in type ? (type.shape as { attributes?: Record<string, unknown> } | undefined) : undefined;
      const attrs = Object.keys(shape?.attributes ?? {});
      attributes.set(q(name), new Set(attrs));
    }
    const actionType = q('Action');
    for (const [name, action] of Object.entries(def.actions ?? {})) {
      const key = `${actionType}::${JSON.stringify(name)}`;
      parents.set(
        key,
        (action.memberOf ?? []).map((m) => `${m.type ? q(m.type) : actionType}::${JSON.stringify(m.id)}`),
      );
    }
  }
  return { attributes, actionAncestors: closure(parents), actions: new Set(parents.keys()) };
}

/** Transitive closure of a parent relation. */
export function closure(parents: ReadonlyMap<string, readonly string[]>): Map<string, Set<string>> {
  const result = new Map<string, Set<string>>();
  const visit = (key: string, seen: Set<string>): Set<string> => {
    const known = result.get(key);
    if (known) return known;
    const acc = new Set<string>();
    for (const p of parents.get(key) ?? []) {
      if (seen.has(p)) continue;
      acc.add(p);
      for (const a of visit(p, new Set([...seen, p]))) acc.add(a);
    }
    result.set(key, acc);
    return acc;
  };
  for (const key of parents.keys()) visit(key, new Set([key]));
  return result;
}
