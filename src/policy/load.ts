import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PortcullisError, errorMessage } from '../lib/errors.js';
import { LimitExceeded } from '../lib/limits.js';
import { parseEntities, createEntityStore, type EntityStore } from './entities.js';
import { checkPolicies, parsePolicyFile, type PolicyRecord } from './policy_set.js';
import { parseRoutes, type RouteTable } from './routes.js';
import { parseSchema, type SchemaInfo } from './schema.js';
import { selectSlice, sliceKey } from './slices.js';
import { ACTION_TYPE } from './vocabulary.js';
import { uidKey } from './cedar.js';
import { unionContextKeys, type ContextKeys } from './context_usage.js';

/** A fully loaded and validated policy folder; nothing of it touches disk afterwards. */
export interface PolicySlice {
  ids: readonly string[];
  /** Context attributes any policy of the slice reads; only these are passed to the engine. */
  contextKeys: ContextKeys;
}

export interface PolicyBundle {
  dir: string;
  /** First 16 hex digits of a SHA-256 over every file of the set. */
  revision: string;
  policies: readonly PolicyRecord[];
  schema: SchemaInfo | undefined;
  routes: RouteTable;
  entities: EntityStore;
  /** Slice key -> the policies in that slice, for every (action, resource type) the routes name. */
  slices: ReadonlyMap<string, PolicySlice>;
}

const SCHEMA_FILE = 'schema.cedarschema';
const ROUTES_FILE = 'routes.yaml';
const ENTITIES_FILE = 'entities.json';
export const DEFAULT_MAX_POLICY_FILE_BYTES = 1024 * 1024;

export interface LoadOptions {
  /** Largest file read (`policies.max_file_bytes`); a larger one fails the load, naming the file. */
  maxFileBytes?: number;
}

/**
 * Reads and validates a policy folder completely; throws ERR_POLICY_LOAD / ERR_ROUTES_INVALID /
 * ERR_ENTITIES_INVALID, or ERR_LIMIT_EXCEEDED for a file over `maxFileBytes`.
 */
export function loadPolicyBundle(dirInput: string, { maxFileBytes = DEFAULT_MAX_POLICY_FILE_BYTES }: LoadOptions = {}): PolicyBundle {
  const dir = resolve(dirInput);
  const files = listFolder(dir);
  // Every file read feeds the revision: a content hash that names exactly this set.
  const revision = createHash('sha256');
  const read = (name: string) => {
    const text = readCapped(join(dir, name), maxFileBytes);
    revision.update(name).update('\0').update(text).update('\0');
    return text;
  };

  const schema = files.includes(SCHEMA_FILE) ? parseSchema(SCHEMA_FILE, read(SCHEMA_FILE)) : undefined;
  const sources = new Map<string, string>();
  const policies: PolicyRecord[] = [];
  for (const name of files.filter((f) => f.endsWith('.cedar')).sort()) {
    const text = read(name);
    sources.set(name, text);
    policies.push(...parsePolicyFile(name, text));
  }
  checkPolicies(policies, schema?.text, sources);

  if (!files.includes(ROUTES_FILE)) throw new PortcullisError('ERR_ROUTES_INVALID', `${join(dir, ROUTES_FILE)}: missing (every request is mapped through it)`);
  const routes = parseRoutes(ROUTES_FILE, read(ROUTES_FILE));
  checkRoutesAgainstSchema(routes, schema);
  const entities = files.includes(ENTITIES_FILE) ? parseEntities(ENTITIES_FILE, read(ENTITIES_FILE), schema?.text) : createEntityStore([]);

  const bundle = { dir, revision: revision.digest('hex').slice(0, 16), policies, schema, routes, entities, slices: new Map<string, PolicySlice>() };
  for (const target of [...routes.routes, ...(routes.fallback ? [routes.fallback] : [])]) {
    const key = sliceKey(target.action, target.resourceType);
    if (!bundle.slices.has(key)) bundle.slices.set(key, computeSlice(bundle, target.action, target.resourceType));
  }
  return bundle;
}

/** The policies that can apply to (action, resource type), and the context attributes they read. */
export function computeSlice(bundle: Pick<PolicyBundle, 'policies' | 'schema'>, action: string, resourceType: string): PolicySlice {
  const selected = selectSlice(bundle.policies, action, resourceType, bundle.schema?.actionAncestors ?? new Map());
  return { ids: selected.map((p) => p.id), contextKeys: unionContextKeys(selected.map((p) => p.contextKeys)) };
}

/** A policy file's text: a regular file within the size limit (checked on the open file, so it cannot grow in between). */
function readCapped(path: string, maxBytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new PortcullisError('ERR_POLICY_LOAD', `cannot read policy file ${path}: not a regular file`);
    if (stat.size > maxBytes) throw new LimitExceeded('policy_file', `${path}: ${stat.size} bytes, more than ${maxBytes}`);
    const bytes = readFileSync(fd);
    if (bytes.length > maxBytes) throw new LimitExceeded('policy_file', `${path}: more than ${maxBytes} bytes`);
    return bytes.toString('utf8');
  } catch (cause) {
    if (cause instanceof PortcullisError) throw cause;
    throw new PortcullisError('ERR_POLICY_LOAD', `cannot read policy file ${path}: ${errorMessage(cause)}`, { cause });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function listFolder(dir: string): string[] {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    return readdirSync(dir);
  } catch (cause) {
    throw new PortcullisError('ERR_POLICY_LOAD', `cannot read policy folder ${dir}: ${(cause as Error).message}`, { cause });
  }
}

function checkRoutesAgainstSchema(routes: RouteTable, schema: SchemaInfo | undefined): void {
  if (!schema) return;
  const problems: string[] = [];
  const targets = [...routes.routes.map((r) => ({ at: `routes.${r.index}`, r })), ...(routes.fallback ? [{ at: 'default', r: routes.fallback }] : [])];
  for (const { at, r } of targets) {
    const where = 'position' in r ? (r.position as string) : ROUTES_FILE;
    if (!schema.actions.has(uidKey(ACTION_TYPE, r.action))) problems.push(`${where} ${at}.action: unknown action "${r.action}" (not in ${SCHEMA_FILE})`);
    if (!schema.attributes.has(r.resourceType)) problems.push(`${where} ${at}.resource.type: unknown entity type "${r.resourceType}" (not in ${SCHEMA_FILE})`);
  }
  if (problems.length) throw new PortcullisError('ERR_ROUTES_INVALID', problems.join('\n'));
}
