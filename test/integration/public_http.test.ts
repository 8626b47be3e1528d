import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { addClient } from '../../src/issuer/clients.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

let sidecar: Sidecar;
let base = '';

beforeAll(async () => {
  sidecar = await startSidecar({});
  base = `http://127.0.0.1:${sidecar.server.httpPort}`;
});
afterAll(() => sidecar.close());

describe('public HTTP listener', () => {
  it('answers /health and /ready like the admin listener, with the token module among the issuers', async () => {
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { policies: true, issuer_keys: { [sidecar.server.issuer!]: true } } });
  });

  it('serves a discovery document whose issuer is the bound address, under both well-known names', async () => {
    const oidc = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    const rfc8414 = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
    expect(oidc).toEqual(rfc8414);
    expect(oidc).toMatchObject({
      issuer: base,
      token_endpoint: `${base}/oauth2/token`,
      jwks_uri: `${base}/jwks.json`,
      code_challenge_methods_supported: ['S256'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(oidc.response_types_supported).toEqual(['code']);
  });

  it('publishes public signing keys only', async () => {
    const res = await fetch(`${base}/jwks.json`);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('answers malformed token requests with RFC 6749 JSON and keeps serving', async () => {
    const cases: Array<[RequestInit, number]> = [
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials"}' }, 400],
      [{ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'grant_type=client_credentials' }, 400],
      [{ method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<grant_type/>' }, 415],
      [{ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&grant_type=refresh_token' }, 400],
      [{ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }, 400],
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' }, 400],
      [{ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${'x'.repeat(70 * 1024)}` }, 413],
    ];
    for (const [init, status] of cases) {
      const res = await fetch(`${base}/oauth2/token`, init);
      expect(res.status, String(init.body).slice(0, 60)).toBe(status);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as { error: string; error_description: string };
      expect(body.error).toBe('invalid_request');
      expect(typeof body.error_description).toBe('string');
    }
    const unsupported = await fetch(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&username=a&password=b' });
    expect(await unsupported.json()).toMatchObject({ error: 'unsupported_grant_type' });
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('lets the login page post to us and redirect to the client, naming an IPv6 loopback redirect by scheme (CSP cannot name IPv6 hosts)', async () => {
    const ctx = sidecar.server.tokens!.ctx;
    const csp = async (clientId: string, redirectUri: string) => {
      await addClient(ctx, { clientId, type: 'public', grantTypes: ['authorization_code'], redirectUris: [redirectUri], scopes: ['openid'], roles: [], firstParty: true });
      const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's' });
      const res = await fetch(`${base}/oauth2/authorize?${q}`);
      expect(res.status).toBe(200);
      return res.headers.get('content-security-policy')!;
    };
    expect(await csp('csp-v4', 'http://127.0.0.1:8123/cb')).toContain("form-action 'self' http://127.0.0.1:8123;");
    expect(await csp('csp-v6', 'http://[::1]:8123/cb')).toContain("form-action 'self' http:;");
    expect(await csp('csp-https', 'https://app.example/cb')).toContain("form-action 'self' https://app.example;");
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found' });
  });

  it('reports not ready on /ready while draining, still answering /health (runs last)', async () => {
    sidecar.server.drain();
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { draining: true } });
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});

describe('liveness when the store is gone', () => {
  it('turns /health 503 on both listeners while Check keeps answering', async () => {
    const own = await startSidecar({});
    try {
      const urls = [`http://127.0.0.1:${own.server.httpPort}/health`, `http://127.0.0.1:${own.server.adminPort}/health`];
      for (const url of urls) expect((await fetch(url)).status).toBe(200);
      await own.server.tokens!.ctx.store.close();
      for (const url of urls) {
        const res = await fetch(url);
        expect(res.status).toBe(503);
        expect(await res.json()).toEqual({ status: 'unhealthy', checks: { store: false } });
      }
      const check = await own.client.check(httpCheckRequest('GET', '/public/index.html'));
      expect(check.httpResponse.case).toBe('okResponse');
    } finally {
      await own.close();
    }
  });
});

describe('authorization request rate limit', () => {
  it('answers a 429 page with Retry-After once an address exceeds authorize_per_minute, storing no interaction', async () => {
    const own = await startSidecar({ token_module: { rate_limit: { authorize_per_minute: 2 } } });
    try {
      await addClient(own.server.tokens!.ctx, { clientId: 'rl', type: 'public', grantTypes: ['authorization_code'], redirectUris: ['http://127.0.0.1:8123/cb'], scopes: ['openid'], roles: [], firstParty: true });
      const q = new URLSearchParams({ response_type: 'code', client_id: 'rl', redirect_uri: 'http://127.0.0.1:8123/cb', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
      const url = `http://127.0.0.1:${own.server.httpPort}/oauth2/authorize?${q}`;
      expect((await fetch(url)).status).toBe(200);
      expect((await fetch(url)).status).toBe(200);
      const limited = await fetch(url);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.headers.get('set-cookie')).toBeNull();
      expect(await limited.text()).toContain('Too many sign-in attempts');
    } finally {
      await own.close();
    }
  });
});
