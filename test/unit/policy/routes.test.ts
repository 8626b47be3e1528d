import { describe, expect, it } from 'vitest';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { matchRoute, parseRoutes } from '../../../src/policy/routes.js';

const table = parseRoutes(
  'routes.yaml',
  `routes:
  - match: { method: [GET, HEAD], path: "/docs/{id}" }
    action: read
    resource: { type: Doc, id: "{id}" }
  - match: { method: "*", path: "/docs/{id}/raw" }
    action: raw
    resource: { type: Doc, id: "raw-{id}" }
  - match: { path: "/files/*/meta" }
    action: meta
    resource: { type: File, id: any }
  - match: { method: get, path: "/public/**" }
    action: public
    resource: { type: Endpoint, id: public }
    anonymous: true
  - match: { method: GET, path: "/docs/{id}" }
    action: shadowed
    resource: { type: Doc, id: "{id}" }
default:
  action: other
  resource: { type: Endpoint, id: fallback }
`,
);

const m = (method: string, path: string) => {
  const r = matchRoute(table, method, path.slice(1).split('/'));
  return r && { action: r.route.action, id: r.resourceId, index: r.index, anonymous: r.route.anonymous };
};

describe('route matching', () => {
  it('takes the first match and fills the resource id from path parameters', () => {
    expect(m('GET', '/docs/d1')).toEqual({ action: 'read', id: 'd1', index: 0, anonymous: false });
    expect(m('HEAD', '/docs/d1')).toMatchObject({ action: 'read' });
    expect(m('GET', '/docs/d1/raw')).toMatchObject({ action: 'raw', id: 'raw-d1' });
  });

  it('matches methods case-sensitively against the upper-cased configuration', () => {
    expect(m('GET', '/public/x')).toMatchObject({ action: 'public' });
    expect(m('get', '/public/x')).toMatchObject({ action: 'other' }); // HTTP methods are case-sensitive
  });

  it('treats * as one segment and a trailing ** as zero or more', () => {
    expect(m('DELETE', '/files/f1/meta')).toMatchObject({ action: 'meta' });
    expect(m('DELETE', '/files/f1/f2/meta')).toMatchObject({ action: 'other' });
    expect(m('GET', '/public')).toMatchObject({ action: 'public' });
    expect(m('GET', '/public/a/b/c')).toMatchObject({ action: 'public', anonymous: true });
  });

  it('does not let a parameter match an empty segment', () => {
    expect(m('GET', '/docs/')).toMatchObject({ action: 'other' });
  });

  it('falls back to the default route, or to nothing without one', () => {
    expect(m('POST', '/nowhere')).toEqual({ action: 'other', id: 'fallback', index: -1, anonymous: false });
    const strict = parseRoutes('routes.yaml', '- match: { path: /a }\n  action: x\n  resource: { type: T, id: t }\n');
    expect(matchRoute(strict, 'GET', ['b'])).toBeUndefined();
    expect(matchRoute(strict, 'PATCH', ['a'])?.route.action).toBe('x'); // method defaults to any
  });
});

describe('routes.yaml errors', () => {
  const error = (text: string) => {
    try {
      parseRoutes('routes.yaml', text);
    } catch (err) {
      if (isPortcullisError(err, 'ERR_ROUTES_INVALID')) return err.message;
      throw err;
    }
    throw new Error('expected ERR_ROUTES_INVALID');
  };

  it('reports YAML syntax errors with line and column', () => {
    expect(error('routes:\n  - match: { path: [unclosed\n')).toMatch(/^routes\.yaml:\d+:\d+ /);
  });

  it('names the key path of schema errors', () => {
    expect(error('routes:\n  - match: { path: /a }\n    resource: { type: T, id: t }\n')).toContain('routes.yaml:2:5 routes.0.action: ');
    expect(error('routes:\n  - match: { path: a }\n    action: x\n    resource: { type: T, id: t }\n')).toContain('routes.yaml:2:20 routes.0.match.path: ');
    expect(error('- match: { path: /a }\n  action: 7\n  resource: { type: T, id: t }\n')).toContain('routes.yaml:2:11 routes.0.action: '); // list form
    expect(error('routes:\n  - match: { path: /a }\n    action: x\n    resource: { type: T, id: t }\n    extra: 1\n')).toContain('routes.0');
  });

  it('rejects ** before the end, unknown segment syntax and undefined parameters', () => {
    expect(error('- match: { path: "/a/**/b" }\n  action: x\n  resource: { type: T, id: t }\n')).toContain('`**` may only end a path template');
    expect(error('- match: { path: "/a/{id" }\n  action: x\n  resource: { type: T, id: t }\n')).toContain('unsupported path segment');
    expect(error('- match: { path: "/a/{id}" }\n  action: x\n  resource: { type: T, id: "{other}" }\n')).toContain('resource.id uses {other}');
  });

  it('rejects parameters in the default route', () => {
    expect(error('routes: []\ndefault:\n  action: x\n  resource: { type: T, id: "{id}" }\n')).toContain('default.resource.id');
  });
});
