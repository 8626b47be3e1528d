import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { createManualClock } from '../../src/lib/clock.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { catchAllRoutes, tempDir } from '../helpers/temp_dir.js';

let idp: JwksServer;
let key: SigningKey;
let sidecar: Sidecar;

beforeAll(async () => {
  idp = await startJwksServer();
  key = await makeKey('k1');
  idp.keys = [key.publicJwk];
  sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }] });
});

afterAll(async () => {
  await sidecar?.close();
  await idp?.close();
});

const token = (sub: string, roles: string[], extra: Record<string, unknown> = {}) => signToken({ sub, roles, ...extra }, { key, issuer: idp.issuer, audience: 'api' });

async function check(method: string, path: string, headers: Record<string, string> = {}): Promise<CheckResponse> {
  return sidecar.client.check(httpCheckRequest(method, path, headers));
}

function httpStatus(res: CheckResponse): number {
  if (res.httpResponse.case === 'okResponse') return 200;
  if (res.httpResponse.case === 'deniedResponse') return res.httpResponse.value.status?.code ?? 403;
  throw new Error(`unexpected response ${res.httpResponse.case}`);
}

function deniedHeader(res: CheckResponse, name: string): string | undefined {
  if (res.httpResponse.case !== 'deniedResponse') return undefined;
  return res.httpResponse.value.headers.find((h) => h.header?.key === name)?.header?.value;
}

describe('example policies through the Envoy Check API', () => {
  // [who, roles, extra claims, method, path, expected HTTP status]
  const table: Array<[string, string[], Record<string, unknown>, string, string, number]> = [
    ['admin', ['admin'], {}, 'DELETE', '/documents/d2', 403], // admin-all permits, but delete without MFA is forbidden
    ['admin', ['admin'], { amr: ['pwd', 'otp'] }, 'DELETE', '/documents/d2', 200],
    ['admin', ['admin'], {}, 'POST', '/documents', 200],
    ['eve', ['editor'], {}, 'PUT', '/documents/d2', 200],
    ['eve', ['editor'], {}, 'GET', '/documents', 200], // editor inherits viewer through entities.json
    ['eve', ['editor'], { amr: ['mfa'] }, 'DELETE', '/documents/d2', 403],
    ['vic', ['viewer'], {}, 'GET', '/documents/d1', 200],
    ['vic', ['viewer'], {}, 'HEAD', '/documents/d1', 200],
    ['vic', ['viewer'], {}, 'PATCH', '/documents/d1', 403],
    ['vic', ['viewer'], {}, 'POST', '/documents', 403],
    ['alice', [], {}, 'GET', '/documents/d1', 200], // owner
    ['alice', [], {}, 'PUT', '/documents/d1', 200],
    ['alice', [], {}, 'GET', '/documents/d2', 403], // bob's
    ['alice', [], {}, 'DELETE', '/documents/d1', 403], // owner, but no MFA
    ['alice', [], { amr: ['pwd', 'otp'] }, 'DELETE', '/documents/d1', 200],
    ['nobody', [], {}, 'GET', '/documents', 403],
    ['vic', ['viewer'], {}, 'GET', '/admin/secret', 403], // no route, no default
    ['vic', ['viewer'], {}, 'GET', '/public/readme.txt', 200],
  ];
  it.each(table)('%s %j %j: %s %s -> %i', async (sub, roles, extra, method, path, expected) => {
    const res = await check(method, path, { authorization: `Bearer ${await token(sub, roles, extra)}` });
    expect(httpStatus(res)).toBe(expected);
    expect(res.status?.code).toBe(expected === 200 ? 0 : 7);
  });

  it('lets anonymous callers reach anonymous routes only', async () => {
    expect(httpStatus(await check('GET', '/public/a/b/c'))).toBe(200);
    expect(httpStatus(await check('GET', '/healthz'))).toBe(200);
    const res = await check('GET', '/documents/d1');
    expect(httpStatus(res)).toBe(401);
    expect(res.status?.code).toBe(16);
    expect(deniedHeader(res, 'www-authenticate')).toBe('Bearer realm="portcullis"');
  });

  it('treats a non-Bearer Authorization scheme as no credential', async () => {
    const res = await check('GET', '/documents/d1', { authorization: 'Basic YWxpY2U6cGFzcw==' });
    expect(httpStatus(res)).toBe(401);
    expect(deniedHeader(res, 'www-authenticate')).toBe('Bearer realm="portcullis"');
  });

  it('accepts the Bearer scheme in any case', async () => {
    const res = await check('GET', '/documents/d1', { authorization: `bEaReR ${await token('vic', ['viewer'])}` });
    expect(httpStatus(res)).toBe(200);
  });
});

describe('allow responses', () => {
  it('sets upstream identity headers, dynamic metadata and strips spoofed x-portcullis-* headers', async () => {
    const res = await check('GET', '/documents/d1?include=body', {
      authorization: `Bearer ${await token('vic', ['viewer', 'auditor'])}`,
      'x-portcullis-subject': 'mallory',
      'x-portcullis-tenant': 'evil',
    });
    expect(res.httpResponse.case).toBe('okResponse');
    if (res.httpResponse.case !== 'okResponse') return;
    const headers = Object.fromEntries(res.httpResponse.value.headers.map((h) => [h.header?.key, h.header?.value]));
    expect(headers['x-portcullis-subject']).toBe('vic');
    expect(headers['x-portcullis-roles']).toBe('viewer,auditor');
    expect(headers['x-portcullis-decision-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.httpResponse.value.headers.every((h) => h.appendAction === 2)).toBe(true); // OVERWRITE_IF_EXISTS_OR_ADD
    expect(res.httpResponse.value.headersToRemove).toEqual(['x-portcullis-tenant']);
    expect(res.dynamicMetadata).toEqual({
      decision_id: headers['x-portcullis-decision-id'],
      subject: 'vic',
      determining_policies: ['viewer-read'],
      policies_checked: 3,
      policy_revision: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
  });

  it('does not pass an inbound subject header through for anonymous requests', async () => {
    const res = await check('GET', '/public/x', { 'x-portcullis-subject': 'admin' });
    expect(res.httpResponse.case).toBe('okResponse');
    if (res.httpResponse.case !== 'okResponse') return;
    expect(res.httpResponse.value.headersToRemove).toEqual(['x-portcullis-subject']);
    expect(res.httpResponse.value.headers.map((h) => h.header?.key)).toEqual(['x-portcullis-decision-id']);
  });
});

describe('deny responses', () => {
  it('renders a policy denial as 403 JSON with the decision id', async () => {
    const res = await check('PUT', '/documents/d2', { authorization: `Bearer ${await token('vic', ['viewer'])}` });
    expect(res.httpResponse.case).toBe('deniedResponse');
    if (res.httpResponse.case !== 'deniedResponse') return;
    expect(res.httpResponse.value.status?.code).toBe(403);
    expect(deniedHeader(res, 'content-type')).toBe('application/json');
    const body = JSON.parse(res.httpResponse.value.body) as Record<string, string>;
    expect(body).toEqual({ error: 'forbidden', decision_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });

  it('answers an unparseable path with 400 and INVALID_ARGUMENT', async () => {
    const res = await check('GET', '/documents/%2e%2e/secret', { authorization: `Bearer ${await token('admin', ['admin'])}` });
    expect(httpStatus(res)).toBe(400);
    expect(res.status?.code).toBe(3);
    if (res.httpResponse.case !== 'deniedResponse') return;
    expect(JSON.parse(res.httpResponse.value.body)).toMatchObject({ error: 'bad_request' });
  });
});

describe('request mapping', () => {
  it('reads headers from header_map (encode_raw_headers) with raw byte values', async () => {
    const jwt = await token('vic', ['viewer']);
    const res = await sidecar.client.check({
      attributes: {
        request: {
          http: {
            method: 'GET',
            path: '/documents/d1',
            host: 'api.example.com',
            headerMap: {
              headers: [
                { key: 'authorization', rawValue: new TextEncoder().encode(`Bearer ${jwt}`) },
                { key: 'x-portcullis-roles', rawValue: new TextEncoder().encode('admin') },
              ],
            },
          },
        },
      },
    });
    expect(httpStatus(res)).toBe(200);
    if (res.httpResponse.case !== 'okResponse') return;
    expect(res.httpResponse.value.headers.find((h) => h.header?.key === 'x-portcullis-roles')?.header?.value).toBe('viewer');
  });

  it('keeps repeated header_map keys apart: two Authorization headers are refused', async () => {
    const jwt = await token('vic', ['viewer']);
    const enc = new TextEncoder();
    const res = await sidecar.client.check({
      attributes: {
        request: {
          http: {
            method: 'GET',
            path: '/documents/d1',
            headerMap: { headers: [{ key: 'authorization', rawValue: enc.encode(`Bearer ${jwt}`) }, { key: 'authorization', rawValue: enc.encode('Bearer other') }] },
          },
        },
      },
    });
    expect(httpStatus(res)).toBe(401);
    expect(deniedHeader(res, 'www-authenticate')).toContain('error="invalid_token"');
  });

  it('routes on the decoded path and ignores the query string', async () => {
    const auth = { authorization: `Bearer ${await token('alice', [])}` };
    expect(httpStatus(await check('GET', '/documents/d1?x=1&y=%2F', auth))).toBe(200);
    expect(httpStatus(await check('GET', '/documents/%64%31', auth))).toBe(200); // %64%31 = d1, alice owns it
    expect(httpStatus(await check('GET', '/documents/d1/', auth))).toBe(403); // trailing segment: no route
  });

  it.each([
    ['/documents/a%2Fb', 'encoded slash'],
    ['/documents/a%5Cb', 'encoded backslash'],
    ['/documents/../d1', 'dot-dot'],
    ['/documents//d1', 'empty segment'],
    ['/documents/d1%00', 'NUL'],
    ['/documents/%zz', 'bad escape'],
    ['documents/d1', 'relative path'],
  ])('refuses the ambiguous path %s (%s) with 400', async (path) => {
    const res = await check('GET', path, { authorization: `Bearer ${await token('admin', ['admin'])}` });
    expect(httpStatus(res)).toBe(400);
  });

  it('passes source ip, host, peer principal and context_extensions to policies via the Cedar context', async () => {
    // A policy folder whose only rule reads the context fields the mapping fills.
    const dir = tempDir('pc-ctx', {
      'routes.yaml': catchAllRoutes(true),
      'ctx.cedar': `@id("ctx") permit(principal, action, resource) when {
        context.ip.isInRange(ip("10.0.0.0/8")) && context.host == "svc.internal" && context.scheme == "https" &&
        context.peer_principal == "spiffe://cluster.local/ns/a/sa/b" && context.request_id == "rid-7" &&
        context.context_extensions.tenant == "t1" && context.method == "POST" && context.path == "/x y" && !context.authenticated
      };`,
    });
    const other = await startSidecar({ policies: { dir } });
    try {
      const base = {
        source: { principal: 'spiffe://cluster.local/ns/a/sa/b', address: { address: { case: 'socketAddress' as const, value: { address: '10.1.2.3' } } } },
        contextExtensions: { tenant: 't1' },
        request: { http: { id: 'rid-7', method: 'POST', path: '/x%20y?q=1', host: 'svc.internal', scheme: 'https' } },
      };
      expect(httpStatus(await other.client.check({ attributes: base }))).toBe(200);
      expect(httpStatus(await other.client.check({ attributes: { ...base, contextExtensions: { tenant: 't2' } } }))).toBe(403);
      const outside = { ...base, source: { ...base.source, address: { address: { case: 'socketAddress' as const, value: { address: '192.0.2.1' } } } } };
      expect(httpStatus(await other.client.check({ attributes: outside }))).toBe(403);
    } finally {
      await other.close();
    }
  });
});

describe('decision telemetry', () => {
  it('records every decision in auth_authz_policies_evaluated with the slice size', async () => {
    const before = await metricValue(sidecar.metrics, 'auth_authz_policies_evaluated_count');
    const beforeSum = await metricValue(sidecar.metrics, 'auth_authz_policies_evaluated_sum');
    await check('GET', '/documents/d1', { authorization: `Bearer ${await token('vic', ['viewer'])}` });
    expect(await metricValue(sidecar.metrics, 'auth_authz_policies_evaluated_count')).toBe(before + 1);
    expect(await metricValue(sidecar.metrics, 'auth_authz_policies_evaluated_sum')).toBe(beforeSum + 3);
  });

  it('logs a denial with its reason and never the token', async () => {
    const jwt = await token('vic', ['viewer']);
    await check('DELETE', '/documents/d1', { authorization: `Bearer ${jwt}` });
    const line = sidecar.logs.filter((l) => l.msg === 'denied').at(-1)!;
    expect(line).toMatchObject({ reason: 'forbidden', action: 'delete', resource_type: 'Document', determining_policies: ['delete-requires-mfa'] });
    expect(JSON.stringify(sidecar.logs)).not.toContain(jwt);
    expect(JSON.stringify(sidecar.logs)).not.toContain(jwt.split('.')[2]);
  });
});

describe('decision cache', () => {
  it('answers repeated identical requests from the cache and keys on every input the slice reads', async () => {
    const dir = tempDir('pc-dcache', {
      'routes.yaml': catchAllRoutes(true),
      'p.cedar': '@id("host-a") permit(principal, action, resource) when { context.host == "a" };\n@id("bob") permit(principal == User::"bob", action, resource);',
    });
    const other = await startSidecar({ policies: { dir }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }] });
    try {
      const ask = async (host: string, auth?: string) => {
        const res = await other.client.check(httpCheckRequest('GET', '/x', auth ? { authorization: auth } : {}, { host }));
        return res.httpResponse.case === 'okResponse';
      };
      const hits = () => metricValue(other.metrics, 'auth_authz_decision_cache_hits_total');
      expect(await ask('a')).toBe(true);
      expect(await hits()).toBe(0);
      expect(await ask('a')).toBe(true);
      expect(await hits()).toBe(1);
      expect(await ask('b')).toBe(false); // the slice reads context.host: a different host is a different key
      expect(await ask('b', `Bearer ${await token('bob', [])}`)).toBe(true); // a different principal too
      expect(await ask('b', `Bearer ${await token('carol', [])}`)).toBe(false);
      expect(await hits()).toBe(1);
    } finally {
      await other.close();
    }
  });
  it('never answers a policy reading context.time from a decision cached in an earlier second', async () => {
    // The sidecar's clock is moved by hand: allowed until `until` (epoch seconds), denied from then on.
    const clock = createManualClock(Date.now());
    const until = Math.floor(clock.now() / 1000) + 2;
    const dir = tempDir('pc-dcache-time', {
      'routes.yaml': catchAllRoutes(true),
      'p.cedar': `@id("until") permit(principal, action, resource) when { context.time < ${until} };`,
    });
    const other = await startSidecar({ policies: { dir }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }] }, clock);
    try {
      const ask = async () => (await other.client.check(httpCheckRequest('GET', '/x', {}))).httpResponse.case === 'okResponse';
      const hits = () => metricValue(other.metrics, 'auth_authz_decision_cache_hits_total');
      expect(await ask()).toBe(true);
      expect(await ask()).toBe(true);
      expect(await hits()).toBe(1); // the same second: the same key (it holds the time the slice read)
      clock.set(until * 1000 - 1);
      expect(await ask()).toBe(true);
      expect(await hits()).toBe(1); // a later second is a new key, evaluated again
      clock.set(until * 1000);
      expect(await ask()).toBe(false); // not the allow cached a second earlier
      expect(await hits()).toBe(1);
    } finally {
      await other.close();
    }
  });
});
