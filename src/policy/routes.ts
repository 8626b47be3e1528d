import { parseDocument } from 'yaml';
import { z } from 'zod';
import { PortcullisError } from '../lib/errors.js';
import { lineCol } from './cedar.js';

/**
 * routes.yaml: HTTP method + path template -> Cedar action and resource.
 * First match wins; no match is a 403 unless `default` is set.
 */
const methodSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const targetSchema = z
  .object({
    action: z.string().min(1),
    resource: z.object({ type: z.string().min(1), id: z.string().min(1) }).strict(),
    anonymous: z.boolean().default(false),
  })
  .strict();

const routeSchema = targetSchema
  .extend({ match: z.object({ method: methodSchema.default('*'), path: z.string().startsWith('/') }).strict() })
  .strict();

/** The file is either a list of routes or `{ routes, default }`; a list is read as `{ routes: list }`. */
const fileSchema = z.object({ routes: z.array(routeSchema), default: targetSchema.optional() }).strict();

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'any' } | { kind: 'rest' };

export interface RouteTarget {
  action: string;
  resourceType: string;
  /** Template of the resource id; `{name}` is replaced by the path parameter. */
  resourceId: string;
  anonymous: boolean;
}

export interface Route extends RouteTarget {
  /** Index in routes.yaml, for diagnostics. */
  index: number;
  /** `routes.yaml:line:col` of the route. */
  position: string;
  methods: ReadonlySet<string> | '*';
  template: string;
  segments: readonly Segment[];
  /** `resourceId` filled from the path parameters; compiled at load (a regex replace per request cost ~3 µs). */
  resourceIdOf: (params: Readonly<Record<string, string>>) => string;
}

export interface RouteTable {
  routes: readonly Route[];
  fallback: RouteTarget | undefined;
}

export interface RouteMatch {
  route: RouteTarget;
  /** Index of the matched route, or -1 for the default route. */
  index: number;
  resourceId: string;
}

export function parseRoutes(file: string, text: string): RouteTable {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    const lines = doc.errors.slice(0, 3).map((e) => `${file}:${e.linePos?.[0]?.line ?? 1}:${e.linePos?.[0]?.col ?? 1} ${e.message.split('\n')[0]}`);
    throw new PortcullisError('ERR_ROUTES_INVALID', lines.join('\n'));
  }
  const raw: unknown = doc.toJS();
  const listForm = Array.isArray(raw);
  /** `file:line:col` of a key path (as the schema sees it), or of its nearest existing parent. */
  const at = (path: ReadonlyArray<PropertyKey>): string => {
    const docPath = (listForm && path[0] === 'routes' ? path.slice(1) : path).map((k) => (typeof k === 'symbol' ? String(k) : k));
    for (let n = docPath.length; n >= 0; n--) {
      const node = doc.getIn(docPath.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return `${file}:${lineCol(text, node.range[0])}`;
    }
    return `${file}:1:1`;
  };
  const parsed = fileSchema.safeParse(listForm ? { routes: raw } : raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${at(i.path)} ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new PortcullisError('ERR_ROUTES_INVALID', lines.join('\n'));
  }
  const { routes: list, default: fallback } = parsed.data;
  const problems: string[] = [];
  const routes = list.map((r, index) => {
    try {
      return compileRoute(r, index, at(['routes', index]));
    } catch (e) {
      problems.push(`${at(['routes', index])} routes.${index}: ${(e as Error).message}`);
      return undefined;
    }
  });
  if (fallback && /\{[^}]*\}/.test(fallback.resource.id)) problems.push(`${at(['default', 'resource', 'id'])} default.resource.id: the default route has no path parameters`);
  if (problems.length) throw new PortcullisError('ERR_ROUTES_INVALID', problems.join('\n'));
  return {
    routes: routes as Route[],
    fallback: fallback && { action: fallback.action, resourceType: fallback.resource.type, resourceId: fallback.resource.id, anonymous: fallback.anonymous },
  };
}

function compileRoute(r: z.infer<typeof routeSchema>, index: number, position: string): Route {
  const segments = r.match.path.slice(1).split('/').map(compileSegment);
  const restAt = segments.findIndex((s) => s.kind === 'rest');
  if (restAt !== -1 && restAt !== segments.length - 1) throw new Error('`**` may only end a path template');
  const params = new Set(segments.flatMap((s) => (s.kind === 'param' ? [s.name] : [])));
  for (const [, name] of r.resource.id.matchAll(/\{([^}]*)\}/g)) {
    if (!params.has(name!)) throw new Error(`resource.id uses {${name}} which the path template does not define`);
  }
  const methods = r.match.method === '*' ? '*' : new Set((Array.isArray(r.match.method) ? r.match.method : [r.match.method]).map((m) => m.toUpperCase()));
  return { index, position, methods, template: r.match.path, segments, action: r.action, resourceType: r.resource.type, resourceId: r.resource.id, anonymous: r.anonymous, resourceIdOf: compileTemplate(r.resource.id) };
}

/** A resource id template (`{name}` replaced by the path parameter, '' when absent) as a function. */
function compileTemplate(template: string): Route['resourceIdOf'] {
  // Odd indexes hold parameter names: 'doc-{a}/{b}' -> ['doc-', 'a', '/', 'b', ''].
  const parts = template.split(/\{([^}]*)\}/);
  if (parts.length === 1) return () => template;
  if (parts.length === 3 && parts[0] === '' && parts[2] === '') {
    const name = parts[1]!;
    return (params) => params[name] ?? '';
  }
  return (params) => {
    let id = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) id += (params[parts[i]!] ?? '') + parts[i + 1]!;
    return id;
  };
}

function compileSegment(seg: string): Segment {
  if (seg === '**') return { kind: 'rest' };
  if (seg === '*') return { kind: 'any' };
  const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(seg);
  if (param) return { kind: 'param', name: param[1]! };
  if (/[{}*]/.test(seg)) throw new Error(`unsupported path segment "${seg}" (use {name}, * or a trailing **)`);
  return { kind: 'literal', value: seg };
}

/** Matches decoded path segments (the path without its leading slash, split on `/`). */
export function matchRoute(table: RouteTable, method: string, segments: readonly string[]): RouteMatch | undefined {
  for (const route of table.routes) {
    if (route.methods !== '*' && !route.methods.has(method)) continue;
    const params = matchSegments(route.segments, segments);
    if (params) return { route, index: route.index, resourceId: route.resourceIdOf(params) };
  }
  if (table.fallback) return { route: table.fallback, index: -1, resourceId: table.fallback.resourceId };
  return undefined;
}

function matchSegments(pattern: readonly Segment[], path: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.kind === 'rest') return params;
    const s = path[i];
    if (s === undefined) return undefined;
    if (p.kind === 'literal' && p.value !== s) return undefined;
    if (p.kind === 'param') {
      if (s === '') return undefined;
      params[p.name] = s;
    }
  }
  return pattern.length === path.length ? params : undefined;
}
