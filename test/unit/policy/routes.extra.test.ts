import { describe, expect, it } from 'vitest';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { matchRoute, parseRoutes } from '../../../src/policy/routes.js';

// Cases beyond routes.test.ts.
const split = (path: string) => path.slice(1).split('/');

function routesError(text: string): string {
  try {
    parseRoutes('routes.yaml', text);
  } catch (err) {
    if (isPortcullisError(err, 'ERR_ROUTES_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected ERR_ROUTES_INVALID');
}

describe('route matching: edge cases', () => {
  const table = parseRoutes(
    'routes.yaml',
    `routes:
  - match: { method: [get, Post], path: "/orgs/{org}/docs/{id}" }
    action: doc
    resource: { type: Doc, id: "{org}-{id}" }
  - match: { method: DELETE, path: "/orgs/{org}" }
    action: drop
    resource: { type: Org, id: "org:{org}" }
  - match: { path: "/" }
    action: root
    resource: { type: Endpoint, id: root }
  - match: { path: "/static/**" }
    action: static
    resource: { type: Endpoint, id: static }
`,
  );
  const m = (method: string, path: string) => matchRoute(table, method, split(path));

  it('fills several parameters into one resource id', () => {
    expect(m('GET', '/orgs/acme/docs/d1')).toMatchObject({ index: 0, resourceId: 'acme-d1' });
    expect(m('DELETE', '/orgs/acme')).toMatchObject({ index: 1, resourceId: 'org:acme' });
  });

  it('upper-cases configured methods and compares the request method as given', () => {
    expect(m('GET', '/orgs/acme/docs/d1')?.route.action).toBe('doc');
    expect(m('POST', '/orgs/acme/docs/d1')?.route.action).toBe('doc');
    expect(m('PUT', '/orgs/acme/docs/d1')).toBeUndefined();
    expect(m('get', '/orgs/acme/docs/d1')).toBeUndefined();
    expect(m('Post', '/orgs/acme/docs/d1')).toBeUndefined();
  });

  it('needs every literal segment and the exact segment count', () => {
    expect(m('GET', '/orgs/acme/files/d1')).toBeUndefined();
    expect(m('GET', '/orgs/acme/docs')).toBeUndefined();
    expect(m('GET', '/orgs/acme/docs/d1/x')).toBeUndefined();
    expect(m('DELETE', '/orgs/acme/')).toBeUndefined();
  });

  it('matches the root path only with the root template', () => {
    expect(m('GET', '/')?.route.action).toBe('root');
    expect(m('GET', '/x')).toBeUndefined();
  });

  it('lets a trailing ** take nothing, an empty trailing segment, or many segments', () => {
    expect(m('GET', '/static')?.route.action).toBe('static');
    expect(m('GET', '/static/')?.route.action).toBe('static');
    expect(m('GET', '/static/css/site.css')?.route.action).toBe('static');
    expect(m('GET', '/staticx')).toBeUndefined();
  });

  it('compiles the routes with their positions and upper-cased method sets', () => {
    const [first, , root] = table.routes;
    expect(first).toMatchObject({ index: 0, position: 'routes.yaml:2:5', template: '/orgs/{org}/docs/{id}', methods: new Set(['GET', 'POST']), anonymous: false });
    expect(root).toMatchObject({ index: 2, position: 'routes.yaml:8:5', methods: '*' });
    expect(table.fallback).toBeUndefined();
  });

  it('reads an empty route list with a default route', () => {
    const onlyDefault = parseRoutes('routes.yaml', 'routes: []\ndefault:\n  action: any\n  resource: { type: Endpoint, id: all }\n  anonymous: true\n');
    expect(matchRoute(onlyDefault, 'GET', split('/whatever/here'))).toEqual({ route: { action: 'any', resourceType: 'Endpoint', resourceId: 'all', anonymous: true }, index: -1, resourceId: 'all' });
  });
});

describe('routes.yaml errors: edge cases', () => {
  it('refuses an empty file at the root', () => {
    expect(routesError('')).toMatch(/^routes\.yaml:1:1 \(root\): /);
  });

  it('reports every broken route at once', () => {
    const msg = routesError('- match: { path: "/a/{1x}" }\n  action: x\n  resource: { type: T, id: t }\n- match: { path: "/ok" }\n  action: x\n  resource: { type: T, id: t }\n- match: { path: "/b/**/c" }\n  action: x\n  resource: { type: T, id: t }\n');
    expect(msg.split('\n')).toEqual([
      'routes.yaml:1:3 routes.0: unsupported path segment "{1x}" (use {name}, * or a trailing **)',
      'routes.yaml:7:3 routes.2: `**` may only end a path template',
    ]);
  });

  it.each(['/a/b*', '/a/{id}x', '/a/{}', '/a/{a-b}', '/a/***'])('refuses the template segment syntax of %s', (path) => {
    expect(routesError(`- match: { path: "${path}" }\n  action: x\n  resource: { type: T, id: t }\n`)).toContain('unsupported path segment');
  });

  it('refuses an empty method list and an unknown key in match', () => {
    expect(routesError('- match: { method: [], path: /a }\n  action: x\n  resource: { type: T, id: t }\n')).toContain('routes.0.match.method');
    expect(routesError('- match: { path: /a, host: x }\n  action: x\n  resource: { type: T, id: t }\n')).toContain('routes.0.match');
  });

  it('refuses a default route without a resource', () => {
    expect(routesError('routes: []\ndefault:\n  action: x\n')).toContain('default.resource');
  });
});
