import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/temp_dir.js';
import { isPortcullisError } from '../../../src/lib/errors.js';
import type { CedarContext, EntityJson } from '../../../src/policy/cedar.js';
import { createPolicyEngine, type ActivePolicySet, type CedarRequest } from '../../../src/policy/engine.js';
import { loadPolicyBundle, type PolicyBundle } from '../../../src/policy/load.js';
import { sliceKey } from '../../../src/policy/slices.js';

const EXAMPLE = resolve(import.meta.dirname, '../../../policies');
const bundle = loadPolicyBundle(EXAMPLE);

/** The example folder with rbac.cedar replaced. */
function exampleWithRbac(rbac: string): PolicyBundle {
  const dir = tempDir('pc-unit-engine');
  for (const name of ['schema.cedarschema', 'ownership.cedar', 'public.cedar', 'routes.yaml', 'entities.json']) writeFileSync(join(dir, name), readFileSync(join(EXAMPLE, name), 'utf8'));
  writeFileSync(join(dir, 'rbac.cedar'), rbac);
  return loadPolicyBundle(dir);
}

// Engines in one process share cedar-wasm's preparsed sets; each test engine gets its own namespace.
let engines = 0;
const newEngine = (decisionCacheSize = 0) => createPolicyEngine({ decisionCacheSize, namespace: `unit-engine-${++engines}-` });

const baseContext: CedarContext = {
  ip: { __extn: { fn: 'ip', arg: '127.0.0.1' } },
  method: 'GET',
  path: '/documents/d1',
  host: 'example.test',
  scheme: 'http',
  request_id: 'r1',
  time: 0,
  authenticated: true,
  scopes: [],
  mfa: false,
  issuer: 'urn:test',
  client_id: '',
  peer_principal: '',
  context_extensions: {},
};

interface Ask {
  user?: string;
  roles?: string[];
  action: string;
  resource?: { type: string; id: string };
  mfa?: boolean;
  cacheKey?: string;
}

function request({ user = 'alice', roles = [], action, resource = { type: 'Document', id: 'd1' }, mfa = false, cacheKey }: Ask, from: PolicyBundle = bundle): CedarRequest {
  const principal: EntityJson = { uid: { type: 'User', id: user }, attrs: {}, parents: roles.map((id) => ({ type: 'Role', id })) };
  return {
    principal: { type: 'User', id: user },
    action,
    resource,
    context: { ...baseContext, mfa },
    entities: [principal, ...roles.flatMap((r) => from.entities.withAncestors('Role', r)), ...from.entities.withAncestors(resource.type, resource.id)],
    ...(cacheKey === undefined ? {} : { cacheKey }),
  };
}

describe('policy engine with the example policies', () => {
  const set = newEngine().install(bundle);
  const ask = (a: Ask) => set.evaluate(request(a));

  it('lets an admin do everything', () => {
    for (const action of ['read', 'update', 'delete']) {
      const answer = ask({ user: 'carol', roles: ['admin'], action, mfa: true });
      expect(answer).toMatchObject({ allow: true, errors: [] });
      expect(answer.reasons).toContain('admin-all');
    }
    expect(ask({ user: 'carol', roles: ['admin'], action: 'create', resource: { type: 'Collection', id: 'documents' } }).allow).toBe(true);
  });

  it('lets a viewer read but not update', () => {
    expect(ask({ user: 'carol', roles: ['viewer'], action: 'read' })).toMatchObject({ allow: true, reasons: ['viewer-read'] });
    expect(ask({ user: 'carol', roles: ['viewer'], action: 'update' })).toMatchObject({ allow: false, reasons: [] });
    expect(ask({ user: 'carol', roles: ['viewer'], action: 'create', resource: { type: 'Collection', id: 'documents' } }).allow).toBe(false);
  });

  it('lets an editor update, through the role hierarchy also read', () => {
    expect(ask({ user: 'carol', roles: ['editor'], action: 'update' })).toMatchObject({ allow: true, reasons: ['editor-write'] });
    expect(ask({ user: 'carol', roles: ['editor'], action: 'read' })).toMatchObject({ allow: true, reasons: ['viewer-read'] });
    expect(ask({ user: 'carol', roles: ['editor'], action: 'delete', mfa: true }).allow).toBe(false);
  });

  it('lets the owner of d1 update it without any role, but not somebody else’s document', () => {
    expect(ask({ action: 'update' })).toMatchObject({ allow: true, reasons: ['owner-manage'] });
    expect(ask({ action: 'update', resource: { type: 'Document', id: 'd2' } })).toMatchObject({ allow: false, reasons: [] });
    expect(ask({ user: 'mallory', action: 'update' }).allow).toBe(false);
  });

  it('denies a delete without MFA by delete-requires-mfa, even to admins', () => {
    expect(ask({ action: 'delete' })).toMatchObject({ allow: false, reasons: ['delete-requires-mfa'] });
    expect(ask({ user: 'carol', roles: ['admin'], action: 'delete' })).toMatchObject({ allow: false, reasons: ['delete-requires-mfa'] });
  });

  it('lets the owner delete with MFA', () => {
    expect(ask({ action: 'delete', mfa: true })).toMatchObject({ allow: true, reasons: ['owner-manage'] });
  });

  it('works with the principal entity from the brief (alice, a viewer)', () => {
    const entities: EntityJson[] = [
      { uid: { type: 'User', id: 'alice' }, attrs: {}, parents: [{ type: 'Role', id: 'viewer' }] },
      ...bundle.entities.withAncestors('Role', 'viewer'),
      ...bundle.entities.withAncestors('Document', 'd1'),
    ];
    const base = { principal: { type: 'User', id: 'alice' }, resource: { type: 'Document', id: 'd1' }, entities };
    expect(set.evaluate({ ...base, action: 'read', context: baseContext }).allow).toBe(true);
    expect(set.evaluate({ ...base, action: 'update', context: baseContext })).toMatchObject({ allow: true, reasons: ['owner-manage'] });
    expect(set.evaluate({ ...base, action: 'delete', context: baseContext })).toMatchObject({ allow: false, reasons: ['delete-requires-mfa'] });
    expect(set.evaluate({ ...base, action: 'delete', context: { ...baseContext, mfa: true } }).allow).toBe(true);
  });

  it('reports the size of the slice it decided on', () => {
    for (const action of ['read', 'update', 'delete']) {
      expect(ask({ action }).policiesChecked).toBe(bundle.slices.get(sliceKey(action, 'Document'))!.ids.length);
    }
    expect(ask({ action: 'read_public', resource: { type: 'Endpoint', id: 'healthz' } })).toMatchObject({ allow: true, reasons: ['public-read'], policiesChecked: 2 });
  });

  it('builds a slice on first use for a pair no route names', () => {
    // (list, Document) is declared nowhere in routes.yaml: admin-all and viewer-read can apply.
    expect(ask({ user: 'carol', roles: ['viewer'], action: 'list' })).toMatchObject({ allow: true, reasons: ['viewer-read'], policiesChecked: 2 });
  });

  it('refuses actions and resource types the schema does not declare', () => {
    const badRequest = (a: Ask): string => {
      try {
        ask(a);
      } catch (err) {
        if (isPortcullisError(err, 'ERR_BAD_REQUEST')) return err.message;
        throw err;
      }
      throw new Error('expected ERR_BAD_REQUEST');
    };
    expect(badRequest({ action: 'fly' })).toBe('unknown action "fly"');
    expect(badRequest({ action: 'read', resource: { type: 'Widget', id: 'w' } })).toBe('unknown resource type "Widget"');
    expect(() => set.checkKnown('read', 'Document')).not.toThrow();
  });

  it('answers repeated questions from the decision cache only when enabled and given a cache key', () => {
    const cached = newEngine(100).install(bundle);
    const q = request({ action: 'update', cacheKey: 'alice|' });
    expect(cached.evaluate(q).cached).toBe(false);
    expect(cached.evaluate(q)).toMatchObject({ allow: true, reasons: ['owner-manage'], cached: true });
    expect(cached.evaluate(request({ action: 'update' })).cached).toBe(false); // no cache key
    expect(set.evaluate(q).cached).toBe(false); // cache disabled
    // A context attribute the slice reads is part of the key.
    expect(cached.evaluate(request({ action: 'delete', cacheKey: 'alice|' }))).toMatchObject({ allow: false, cached: false });
    expect(cached.evaluate(request({ action: 'delete', mfa: true, cacheKey: 'alice|' }))).toMatchObject({ allow: true, cached: false });
    expect(cached.evaluate(request({ action: 'delete', cacheKey: 'alice|' }))).toMatchObject({ allow: false, cached: true });
  });
});

describe('reinstalling bundles', () => {
  // Viewers lose read access in the second bundle.
  const noViewerRead = exampleWithRbac(readFileSync(join(EXAMPLE, 'rbac.cedar'), 'utf8').replace(/@id\("viewer-read"\)[\s\S]*?;\n/, ''));
  const viewerRead = (set: ActivePolicySet) => set.evaluate(request({ user: 'carol', roles: ['viewer'], action: 'read' }));

  it('drops the removed policy from the second bundle', () => {
    expect(noViewerRead.policies.map((p) => p.id)).not.toContain('viewer-read');
    expect(noViewerRead.slices.get(sliceKey('read', 'Document'))!.ids).toEqual(['owner-manage', 'admin-all']);
  });

  it('evaluates each newly installed generation with its own policies', () => {
    const engine = newEngine();
    const first = engine.install(bundle);
    expect(first.generation).toBe(1);
    expect(viewerRead(first)).toMatchObject({ allow: true, policiesChecked: 3 });

    const second = engine.install(noViewerRead);
    expect(second.generation).toBe(2);
    expect(second.bundle).toBe(noViewerRead);
    expect(viewerRead(second)).toMatchObject({ allow: false, policiesChecked: 2 });
    expect(second.evaluate(request({ user: 'carol', roles: ['admin'], action: 'read' })).allow).toBe(true);

    const third = engine.install(bundle);
    expect(third.generation).toBe(3);
    expect(viewerRead(third)).toMatchObject({ allow: true, reasons: ['viewer-read'], policiesChecked: 3 });
    expect(third.evaluate(request({ action: 'delete' }))).toMatchObject({ allow: false, reasons: ['delete-requires-mfa'] });
  });

  it('keeps the live generation answering with its own policies while the next one is installed beside it', () => {
    const engine = newEngine();
    engine.install(bundle);
    const second = engine.install(noViewerRead);
    const third = engine.install(bundle);
    expect(viewerRead(second)).toMatchObject({ allow: false, policiesChecked: 2 });
    expect(viewerRead(third)).toMatchObject({ allow: true, policiesChecked: 3 });
    const fourth = engine.install(noViewerRead);
    expect(viewerRead(third)).toMatchObject({ allow: true, policiesChecked: 3 });
    expect(viewerRead(fourth)).toMatchObject({ allow: false, policiesChecked: 2 });
  });

  it('starts a fresh decision cache with every install', () => {
    const engine = newEngine(100);
    const first = engine.install(bundle);
    const q = request({ user: 'carol', roles: ['viewer'], action: 'read', cacheKey: 'carol|viewer' });
    first.evaluate(q);
    expect(first.evaluate(q)).toMatchObject({ allow: true, cached: true });
    const second = engine.install(noViewerRead);
    expect(second.evaluate(q)).toMatchObject({ allow: false, cached: false });
  });
});

describe('a rejected install', () => {
  it('never advances the generation, so the next install cannot overwrite the live set', () => {
    const bundle = loadPolicyBundle(EXAMPLE);
    const engine = createPolicyEngine({ decisionCacheSize: 0, namespace: 'reject' });
    const live = engine.install(bundle);
    expect(() => engine.install(bundle, () => { throw new Error('warm-up failed'); })).toThrow('warm-up failed');
    const next = engine.install(bundle);
    expect(next.generation).toBe(live.generation + 1);
  });
});
