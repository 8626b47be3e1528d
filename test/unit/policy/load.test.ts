import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/temp_dir.js';
import { PortcullisError, type ErrorCode } from '../../../src/lib/errors.js';
import { loadPolicyBundle } from '../../../src/policy/load.js';
import { sliceKey } from '../../../src/policy/slices.js';

const EXAMPLE = resolve(import.meta.dirname, '../../../policies');
const example = (name: string) => readFileSync(join(EXAMPLE, name), 'utf8');

/** A temporary policy folder: the example files, with `changes` replacing (or, as null, removing) some. */
function folder(changes: Record<string, string | null> = {}): string {
  const dir = tempDir('pc-unit-load');
  const files: Record<string, string | null> = {
    'schema.cedarschema': example('schema.cedarschema'),
    'rbac.cedar': example('rbac.cedar'),
    'ownership.cedar': example('ownership.cedar'),
    'public.cedar': example('public.cedar'),
    'routes.yaml': example('routes.yaml'),
    'entities.json': example('entities.json'),
    ...changes,
  };
  for (const [name, text] of Object.entries(files)) if (text !== null) writeFileSync(join(dir, name), text);
  return dir;
}

function loadError(dir: string, code: ErrorCode): string {
  try {
    loadPolicyBundle(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as PortcullisError).code).toBe(code);
    return (err as PortcullisError).message;
  }
  throw new Error(`expected ${code}`);
}

describe('loadPolicyBundle on the example folder', () => {
  const bundle = loadPolicyBundle(EXAMPLE);

  it('loads all six policies in file order with their ids', () => {
    expect(bundle.dir).toBe(EXAMPLE);
    expect(bundle.policies.map((p) => `${p.file}:${p.id}`)).toEqual([
      'ownership.cedar:owner-manage',
      'ownership.cedar:delete-requires-mfa',
      'public.cedar:public-read',
      'rbac.cedar:admin-all',
      'rbac.cedar:viewer-read',
      'rbac.cedar:editor-write',
    ]);
  });

  it('computes a slice for every (action, resource type) the routes name', () => {
    const slices = Object.fromEntries([...bundle.slices].map(([key, s]) => [key, [...s.ids]]));
    expect(slices).toEqual({
      [sliceKey('read_public', 'Endpoint')]: ['public-read', 'admin-all'],
      [sliceKey('list', 'Collection')]: ['admin-all', 'viewer-read'],
      [sliceKey('create', 'Collection')]: ['admin-all', 'editor-write'],
      [sliceKey('read', 'Document')]: ['owner-manage', 'admin-all', 'viewer-read'],
      [sliceKey('update', 'Document')]: ['owner-manage', 'admin-all', 'editor-write'],
      [sliceKey('delete', 'Document')]: ['owner-manage', 'delete-requires-mfa', 'admin-all'],
    });
  });

  it('records which context attributes each slice reads', () => {
    expect(bundle.slices.get(sliceKey('delete', 'Document'))!.contextKeys).toEqual(new Set(['mfa']));
    expect(bundle.slices.get(sliceKey('read', 'Document'))!.contextKeys).toEqual(new Set());
  });

  it('reads the schema, routes and entities', () => {
    expect(bundle.schema?.actions).toEqual(new Set(['Action::"list"', 'Action::"create"', 'Action::"read"', 'Action::"update"', 'Action::"delete"', 'Action::"read_public"']));
    expect(bundle.routes.routes).toHaveLength(7);
    expect(bundle.routes.fallback).toBeUndefined();
    expect(bundle.entities.size).toBe(5);
    expect(bundle.entities.get('Document', 'd1')?.attrs).toMatchObject({ owner: { __entity: { type: 'User', id: 'alice' } } });
  });

  it('names the content with a stable 16-hex-digit revision that changes with any file', () => {
    expect(bundle.revision).toMatch(/^[0-9a-f]{16}$/);
    expect(loadPolicyBundle(EXAMPLE).revision).toBe(bundle.revision);
    const same = folder();
    expect(loadPolicyBundle(same).revision).toBe(bundle.revision);
    const changed = folder({ 'public.cedar': `${example('public.cedar')}\n// a comment\n` });
    expect(loadPolicyBundle(changed).revision).not.toBe(bundle.revision);
  });
});

describe('loadPolicyBundle on broken folders', () => {
  it('refuses a folder without routes.yaml', () => {
    const dir = folder({ 'routes.yaml': null });
    expect(loadError(dir, 'ERR_ROUTES_INVALID')).toBe(`${join(dir, 'routes.yaml')}: missing (every request is mapped through it)`);
  });

  it('refuses a folder that does not exist', () => {
    const dir = join(folder(), 'nope');
    expect(loadError(dir, 'ERR_POLICY_LOAD')).toContain(`cannot read policy folder ${dir}`);
  });

  it('refuses a route naming an action the schema does not declare', () => {
    const dir = folder({ 'routes.yaml': 'routes:\n  - match: { path: /x }\n    action: frobnicate\n    resource: { type: Document, id: x }\n' });
    expect(loadError(dir, 'ERR_ROUTES_INVALID')).toBe('routes.yaml:2:5 routes.0.action: unknown action "frobnicate" (not in schema.cedarschema)');
  });

  it('refuses a route naming an entity type the schema does not declare', () => {
    const dir = folder({ 'routes.yaml': '- match: { path: /x }\n  action: read\n  resource: { type: Widget, id: x }\n' });
    expect(loadError(dir, 'ERR_ROUTES_INVALID')).toContain('routes.0.resource.type: unknown entity type "Widget"');
  });

  it('refuses a default route naming an undeclared action', () => {
    const dir = folder({ 'routes.yaml': 'routes: []\ndefault:\n  action: nope\n  resource: { type: Document, id: x }\n' });
    expect(loadError(dir, 'ERR_ROUTES_INVALID')).toContain('default.action: unknown action "nope"');
  });

  it('refuses invalid YAML in routes.yaml with its position', () => {
    expect(loadError(folder({ 'routes.yaml': 'routes: [\n' }), 'ERR_ROUTES_INVALID')).toMatch(/^routes\.yaml:\d+:\d+ /);
  });

  it('refuses entities.json that is not JSON', () => {
    expect(loadError(folder({ 'entities.json': '{ nope' }), 'ERR_ENTITIES_INVALID')).toMatch(/^entities\.json: not valid JSON/);
  });

  it('refuses entities.json that is not an array', () => {
    expect(loadError(folder({ 'entities.json': '{"uid": {"type": "Role", "id": "x"}}' }), 'ERR_ENTITIES_INVALID')).toBe('entities.json: must hold a JSON array of entities');
  });

  it('refuses an entity of a type the schema does not declare', () => {
    const msg = loadError(folder({ 'entities.json': '[{"uid":{"type":"Widget","id":"w"},"attrs":{},"parents":[]}]' }), 'ERR_ENTITIES_INVALID');
    expect(msg).toMatch(/^entities\.json/);
    expect(msg).toContain('Widget');
  });

  it('refuses an entity whose attributes break the schema', () => {
    const msg = loadError(folder({ 'entities.json': '[{"uid":{"type":"Document","id":"d"},"attrs":{"title":7},"parents":[]}]' }), 'ERR_ENTITIES_INVALID');
    expect(msg).toMatch(/^entities\.json/);
  });

  it('refuses a .cedar file with a syntax error, naming file, line and column', () => {
    expect(loadError(folder({ 'broken.cedar': '\n\npermit(principal, action resource);\n' }), 'ERR_POLICY_LOAD')).toMatch(/^broken\.cedar:3:26 /);
  });

  it('refuses a policy the schema rejects, naming its file', () => {
    const msg = loadError(folder({ 'extra.cedar': 'permit(principal, action == Action::"read", resource)\nwhen { resource.color == "red" };' }), 'ERR_POLICY_LOAD');
    expect(msg).toMatch(/^extra\.cedar:2:8 /);
    expect(msg).toContain('`color`');
  });

  it('refuses a policy id used in two files', () => {
    expect(loadError(folder({ 'copy.cedar': '@id("admin-all") permit(principal, action, resource);' }), 'ERR_POLICY_LOAD')).toContain('duplicate policy id "admin-all"');
  });

  it('refuses an unparsable schema', () => {
    expect(loadError(folder({ 'schema.cedarschema': 'entity User' }), 'ERR_POLICY_LOAD')).toMatch(/^schema\.cedarschema:/);
  });

  it('loads without a schema or entities.json, checking nothing against a schema', () => {
    const dir = folder({ 'schema.cedarschema': null, 'entities.json': null, 'routes.yaml': '- match: { path: /x }\n  action: anything\n  resource: { type: Whatever, id: x }\n' });
    const bundle = loadPolicyBundle(dir);
    expect(bundle.schema).toBeUndefined();
    expect(bundle.entities.size).toBe(0);
    expect([...bundle.slices.keys()]).toEqual([sliceKey('anything', 'Whatever')]);
    expect(bundle.slices.get(sliceKey('anything', 'Whatever'))!.ids).toEqual(['admin-all']);
  });
});
