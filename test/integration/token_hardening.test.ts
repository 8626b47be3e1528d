import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addClient } from '../../src/issuer/clients.js';
import type { IssuerContext } from '../../src/issuer/context.js';
import { addUser, setDisabled, setPassword } from '../../src/issuer/users.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/** Defences added after a security review of the token module, each over real HTTP. */
const ADMIN_KEY = 'hardening-admin-key-0123456789';
const PASSWORD = 'hardening-password-1';
let sidecar: Sidecar;
let ctx: IssuerContext;
let base = '';

beforeAll(async () => {
  sidecar = await startSidecar({ admin: { api_key: ADMIN_KEY }, http: { trusted_proxy_hops: 1 }, token_module: { rate_limit: { login_per_minute: 3 } } });
  ctx = sidecar.server.tokens!.ctx;
  base = `http://127.0.0.1:${sidecar.server.httpPort}`;
  for (const u of ['hard-a', 'hard-b', 'hard-c']) await addUser(ctx, { username: u, password: PASSWORD, roles: ['viewer'] });
});
afterAll(() => sidecar.close());

const json = (path: string, body: unknown, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });
const login = async (username: string, xff: string) => (await json('/login', { username, password: PASSWORD }, { 'x-forwarded-for': xff })).json() as Promise<Record<string, string>>;

describe('token module hardening', () => {
  it('takes the client IP one trusted hop from the right of X-Forwarded-For, so a client cannot pick its own', async () => {
    // Behind one proxy the rightmost entry is what that proxy saw; whatever the client put before it is ignored.
    const statuses: number[] = [];
    for (const spoofed of ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4']) statuses.push((await json('/login', { username: 'hard-a', password: PASSWORD }, { 'x-forwarded-for': `${spoofed}, 10.9.9.9` })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const events = await (await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/admin/audit?kind=login.password&limit=3`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json();
    expect((events as { events: Array<{ ip: string }> }).events.every((e) => e.ip === '10.9.9.9')).toBe(true);
  });

  it('accepts /login only as JSON (a cross-site form cannot post credentials)', async () => {
    const res = await form('/login', { username: 'hard-b', password: PASSWORD }, { 'x-forwarded-for': '10.0.0.2' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('refuses /login for a confidential first-party client (it would be impersonated without its secret)', async () => {
    await addClient(ctx, { clientId: 'hard-backend', type: 'confidential', grantTypes: ['client_credentials', 'refresh_token'], redirectUris: [], scopes: ['openid'], roles: [], firstParty: true });
    const res = await json('/login', { username: 'hard-b', password: PASSWORD, client_id: 'hard-backend' }, { 'x-forwarded-for': '10.0.0.3' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('leaves a refresh token usable when the refresh asks for a wider scope', async () => {
    const tokens = await login('hard-b', '10.0.0.4');
    const wider = await form('/oauth2/token', { grant_type: 'refresh_token', client_id: 'portcullis-login', refresh_token: tokens.refresh_token!, scope: 'openid profile email offline_access admin' });
    expect(await wider.json()).toMatchObject({ error: 'invalid_scope' });
    const ok = await form('/oauth2/token', { grant_type: 'refresh_token', client_id: 'portcullis-login', refresh_token: tokens.refresh_token!, scope: 'openid' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ scope: 'openid' });
  });

  it('ends refresh families when the password is reset or the account disabled, and enabling does not revive them', async () => {
    const first = await login('hard-c', '10.0.0.5');
    await setPassword(ctx, 'hard-c', 'a-brand-new-password');
    expect(await (await form('/oauth2/token', { grant_type: 'refresh_token', client_id: 'portcullis-login', refresh_token: first.refresh_token! })).json()).toMatchObject({ error: 'invalid_grant' });
    const second = (await (await json('/login', { username: 'hard-c', password: 'a-brand-new-password' }, { 'x-forwarded-for': '10.0.0.6' })).json()) as Record<string, string>;
    await setDisabled(ctx, 'hard-c', true);
    await setDisabled(ctx, 'hard-c', false);
    expect(await (await form('/oauth2/token', { grant_type: 'refresh_token', client_id: 'portcullis-login', refresh_token: second.refresh_token! })).json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('answers a client assertion whose sub is not a string with invalid_client, not a server error', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const assertion = await new SignJWT({ sub: { id: 'x' } as unknown as string, jti: 'j1' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('x').setAudience(base).setIssuedAt().setExpirationTime('1m').sign(privateKey);
    const res = await form('/oauth2/token', { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('challenges a userinfo request without a token with a bare Bearer (RFC 6750 §3.1)', async () => {
    const res = await fetch(`${base}/userinfo`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('withdraws every earlier signing key at once with revoke_previous (key compromise)', async () => {
    const before = await login('hard-b', '10.0.0.7');
    const rotate = await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/admin/keys/rotate?revoke_previous=true`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(rotate.status).toBe(200);
    const { rotated } = (await rotate.json()) as { rotated: string };
    const kids = ((await (await fetch(`${base}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    expect(kids).toEqual([rotated]);
    const introspect = await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${before.access_token}` } });
    expect(introspect.status).toBe(401);
    const after = await login('hard-b', '10.0.0.8');
    expect((await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${after.access_token}` } })).status).toBe(200);
  });
});
