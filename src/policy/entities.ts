import { PortcullisError } from '../lib/errors.js';
import { cedar, describeCedarErrors, uidKey, type CedarContext, type EntityJson } from './cedar.js';
import { closure } from './schema.js';

/** Static entities from entities.json, with each entity's ancestors resolved once at load. */
export interface EntityStore {
  get(type: string, id: string): EntityJson | undefined;
  /** The entity and every static ancestor of it, for a request's entity list (empty entities left out). */
  withAncestors(type: string, id: string): readonly EntityJson[];
  readonly size: number;
}

export function parseEntities(file: string, text: string, schemaText: string | undefined): EntityStore {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (cause) {
    throw new PortcullisError('ERR_ENTITIES_INVALID', `${file}: not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (!Array.isArray(list)) throw new PortcullisError('ERR_ENTITIES_INVALID', `${file}: must hold a JSON array of entities`);
  const answer = cedar.checkParseEntities({ entities: list as EntityJson[], schema: schemaText ?? null });
  if (answer.type === 'failure') {
    throw new PortcullisError('ERR_ENTITIES_INVALID', describeCedarErrors(file, text, answer.errors).join('\n'));
  }
  return createEntityStore(list as EntityJson[]);
}

export function createEntityStore(list: readonly EntityJson[]): EntityStore {
  const byKey = new Map<string, EntityJson>();
  const parents = new Map<string, string[]>();
  for (const e of list) {
    const uid = plainUid(e.uid);
    const key = uidKey(uid.type, uid.id);
    byKey.set(key, e);
    parents.set(key, e.parents.map((p) => { const u = plainUid(p); return uidKey(u.type, u.id); }));
  }
  const ancestors = closure(parents);
  // Looked up by type, then id: a lookup per Check builds no key string (uidKey's JSON.stringify and
  // concatenation cost more than the lookups themselves).
  const entities = new Map<string, Map<string, EntityJson>>();
  const expanded = new Map<string, Map<string, readonly EntityJson[]>>();
  for (const [key, e] of byKey) {
    const { type, id } = plainUid(e.uid);
    // Entities with no attributes, parents or tags are left out: Cedar treats a missing entity
    // exactly like an empty one, and every entity passed costs time in the engine.
    const chain = [key, ...(ancestors.get(key) ?? [])].flatMap((k) => byKey.get(k) ?? []).filter((x) => !isEmptyEntity(x));
    byType(entities, type).set(id, e);
    byType(expanded, type).set(id, Object.freeze(chain));
  }
  return {
    get: (type, id) => entities.get(type)?.get(id),
    withAncestors: (type, id) => expanded.get(type)?.get(id) ?? NONE,
    size: byKey.size,
  };
}

const NONE: readonly EntityJson[] = Object.freeze([]);

function byType<T>(map: Map<string, Map<string, T>>, type: string): Map<string, T> {
  let ids = map.get(type);
  if (!ids) map.set(type, (ids = new Map()));
  return ids;
}

function plainUid(uid: EntityJson['uid']): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid;
}

export function isEmptyEntity(e: EntityJson): boolean {
  return e.parents.length === 0 && Object.keys(e.attrs).length === 0 && (!e.tags || Object.keys(e.tags).length === 0);
}

/** Why Cedar refuses a context record, or undefined when it parses. */
export function cedarParseContext(context: Record<string, unknown>): string | undefined {
  const answer = cedar.checkParseContext({ context: context as CedarContext, schema: null, action: null });
  return answer.type === 'failure' ? answer.errors.map((e) => e.message).join('; ') : undefined;
}

/** Why Cedar refuses a list of entities (without a schema), or undefined when it parses. */
export function cedarParseEntities(entities: EntityJson[]): string | undefined {
  const answer = cedar.checkParseEntities({ entities, schema: null });
  return answer.type === 'failure' ? answer.errors.map((e) => e.message).join('; ') : undefined;
}
