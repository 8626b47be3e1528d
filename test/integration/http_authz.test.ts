import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

let idp: JwksServer;
let key: SigningKey;
let sidecar: Sidecar;

beforeAll(async () => {
  idp = await startJwksServer();
  key = await makeKey('k1');
  idp.keys = [key.publicJwk];
  sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }], http_authz: { address: '127.0.0.1:0', path_prefix: '/authz' } });
});

afterAll(async () => {
  await sidecar?.close();
  await idp?.close();
});

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** What Envoy's HTTP ext_authz client does: replay method, prefixed raw path and headers. */
function ask(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: sidecar.server.httpAuthzPort, method, path: `/authz${path}`, headers: { host: 'api.example.com', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += String(c)));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const token = (sub: string, roles: string[], extra: Record<string, unknown> = {}) => signToken({ sub, roles, ...extra }, { key, issuer: idp.issuer, audience: 'api' });

describe('Envoy HTTP ext_authz mode', () => {
  it('allows and denies exactly the requests the gRPC mode does', async () => {
    const viewer = `Bearer ${await token('vic', ['viewer'])}`;
    const owner = `Bearer ${await token('alice', [], { amr: ['otp'] })}`;
    const cases: Array<[string, string, Record<string, string>]> = [
      ['GET', '/documents/d1', { authorization: viewer }],
      ['PUT', '/documents/d1', { authorization: viewer }],
      ['DELETE', '/documents/d1', { authorization: owner }],
      ['DELETE', '/documents/d2', { authorization: owner }],
      ['GET', '/documents/d1', {}],
      ['GET', '/documents/d1', { authorization: 'Bearer garbage' }],
      ['GET', '/public/a?b=c', {}],
      ['GET', '/documents/..%2Fsecret', { authorization: viewer }],
      ['GET', '/nowhere', { authorization: viewer }],
    ];
    for (const [method, path, headers] of cases) {
      const grpc = await sidecar.client.check(httpCheckRequest(method, path, headers));
      const grpcStatus = grpc.httpResponse.case === 'okResponse' ? 200 : grpc.httpResponse.case === 'deniedResponse' ? grpc.httpResponse.value.status?.code : -1;
      const http = await ask(method, path, headers);
      expect(http.status, `${method} ${path}`).toBe(grpcStatus);
    }
  });

  it('sends identity headers for the upstream and names spoofed ones for removal', async () => {
    const res = await ask('GET', '/documents/d1', { authorization: `Bearer ${await token('vic', ['viewer', 'auditor'])}`, 'x-portcullis-tenant': 'evil' });
    expect(res.status).toBe(200);
    expect(res.headers['x-portcullis-subject']).toBe('vic');
    expect(res.headers['x-portcullis-roles']).toBe('viewer,auditor');
    expect(res.headers['x-portcullis-decision-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-envoy-auth-headers-to-remove']).toBe('x-portcullis-tenant');
  });

  it('answers denials with the challenge and a JSON body', async () => {
    const missing = await ask('GET', '/documents/d1');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="portcullis"');
    expect(missing.headers['content-type']).toContain('application/json');
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'unauthenticated' });
    const forbidden = await ask('PUT', '/documents/d2', { authorization: `Bearer ${await token('vic', ['viewer'])}` });
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.body)).toEqual({ error: 'forbidden', decision_id: expect.any(String) });
  });

  it('parses a forwarded JSON body and refuses a broken one with 400', async () => {
    const broken = await ask('POST', '/documents', { authorization: `Bearer ${await token('eve', ['editor'])}`, 'content-type': 'application/json' }, '{"title": ');
    expect(broken.status).toBe(400);
    expect(JSON.parse(broken.body).error_description).toContain('not valid JSON');
    const huge = await ask('POST', '/documents', { authorization: `Bearer ${await token('eve', ['editor'])}`, 'content-type': 'application/json' }, `{"pad": "${'x'.repeat(70 * 1024)}"}`);
    expect(huge.status).toBe(400); // over request_body.max_bytes (64 KiB): refused, never allowed
    const ok = await ask('POST', '/documents', { authorization: `Bearer ${await token('eve', ['editor'])}`, 'content-type': 'application/json' }, '{"title": "x"}');
    expect(ok.status).toBe(200);
  });
});
