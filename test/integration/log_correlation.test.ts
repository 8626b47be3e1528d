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
  sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }] });
});
afterAll(async () => {
  await sidecar?.close();
  await idp?.close();
});

describe('log correlation', () => {
  it('puts the request and decision ids on lines other modules log while a check is handled', async () => {
    idp.mode = 'error500';
    const unknownKid = await makeKey('k-unknown');
    const token = await signToken({ sub: 'u1', roles: ['viewer'] }, { key: unknownKid, issuer: idp.issuer, audience: 'api' });
    const res = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${token}` }));
    expect(res.httpResponse.case).toBe('deniedResponse');
    const denial = sidecar.logs.find((l) => l.msg === 'denied' && l.code === 'ERR_TOKEN_KEY_NOT_FOUND');
    expect(denial).toMatchObject({ level: 30, request_id: 'req-1' });
    // The JWKS refetch the unknown kid triggered failed inside this check: its warning carries the same ids.
    const fetchFailure = sidecar.logs.find((l) => l.msg === 'JWKS fetch failed; keeping last good keys');
    expect(fetchFailure).toMatchObject({ request_id: 'req-1', decision_id: denial!.decision_id });
    expect(fetchFailure).not.toHaveProperty('trace_id'); // tracing is off
  });

  it('logs allows at debug and denials at info', async () => {
    idp.mode = 'ok';
    const token = await signToken({ sub: 'u2', roles: ['viewer'] }, { key, issuer: idp.issuer, audience: 'api' });
    await sidecar.client.check(httpCheckRequest('GET', '/documents/d2', { authorization: `Bearer ${token}` }));
    expect(sidecar.logs.filter((l) => l.msg === 'allowed').at(-1)).toMatchObject({ level: 20, resource_type: 'Document', action: 'read' });
  });

  it('carries the request id of token-module requests (X-Request-Id when it is plain, else a generated one)', async () => {
    const post = (requestId: string) =>
      fetch(`http://127.0.0.1:${sidecar.server.httpPort}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body: JSON.stringify({ username: 'nobody-here', password: 'wrong-password-123' }) });
    expect((await post('login-req-1')).status).toBe(401);
    expect(sidecar.logs.find((l) => l.msg === 'audit' && l.request_id === 'login-req-1')).toBeDefined();
    const forged = 'x"}\n{"level":60';
    await post(encodeURIComponent(forged));
    const last = sidecar.logs.filter((l) => l.msg === 'audit').at(-1)!;
    expect(last.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
