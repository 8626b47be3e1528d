import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { addClient } from '../../src/issuer/clients.js';
import type { IssuerContext } from '../../src/issuer/context.js';
import { UPSTREAM_FAILED_MESSAGE } from '../../src/issuer/upstream/interaction_steps.js';
import { BrowserSession, createTestUser, parseInteractionPage, totpCode } from '../helpers/login_flow.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { IDP_API, startUpstreamIdp, type UpstreamIdp } from '../helpers/upstream_idp.js';
import { follow, loginThroughProvider, RP_REDIRECT, type UpstreamRun } from '../helpers/upstream_login.js';

/**
 * Login through an external OpenID provider, token exchange and brokered upstream tokens, against
 * a real provider (oidc-provider) on loopback. Two Portcullis servers share the provider: "open"
 * links by verified email, provisions, stores upstream tokens and lets one client exchange
 * tokens; "strict" does none of that, so an unknown account is refused. Browsers are plain fetch
 * with a cookie jar (test/helpers/login_flow.ts) following every redirect by hand.
 */

const ADMIN_KEY = 'admin-key-upstream-0123456789';
const IDP_SECRET = `idp-secret-${randomBytes(8).toString('hex')}`;
const SERVICE_SECRET = `svc-secret-${randomBytes(8).toString('hex')}`;
const SERVICE_REDIRECT = 'http://127.0.0.1:9/svc/callback';

let idp: UpstreamIdp;
let open: Sidecar;
let strict: Sidecar;
const secrets: Record<string, string> = {};

const provider = (overrides: Record<string, unknown>) => ({
  id: 'corp',
  name: 'Corp SSO',
  issuer: idp.issuer,
  client_id: 'portcullis',
  client_secret: IDP_SECRET,
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  authorization_params: { prompt: 'consent' },
  jwks: { request_budget_ms: 5000 },
  ...overrides,
});

async function startPortcullis(upstream: Record<string, unknown>, more: Record<string, unknown>[] = []): Promise<Sidecar> {
  const config: ConfigInput = {
    admin: { api_key: ADMIN_KEY },
    token_module: { rate_limit: { login_per_minute: 1000 } },
    // The ext_authz path trusts tokens the provider issues for its API directly, as any issuer.
    issuers: [{ issuer: idp.issuer, discovery: true, audiences: [IDP_API], jwks: { request_budget_ms: 5000 } }],
    upstream_providers: [provider(upstream), ...more] as ConfigInput['upstream_providers'],
  };
  const sidecar = await startSidecar(config);
  const ctx = sidecar.server.tokens!.ctx;
  const { secret } = await addClient(ctx, { clientId: 'portal', type: 'confidential', grantTypes: ['authorization_code'], redirectUris: [RP_REDIRECT], scopes: ['openid', 'profile', 'email'], roles: [], firstParty: true });
  secrets[`${sidecar.server.issuer}:portal`] = secret!;
  return sidecar;
}

beforeAll(async () => {
  idp = await startUpstreamIdp();
  open = await startPortcullis({ scopes: ['openid', 'email', 'profile', 'offline_access', 'groups'], link_by_verified_email: true, auto_provision: true, default_roles: ['viewer'], claims: { roles: 'groups' }, store_tokens: true, token_exchange_clients: ['svc-exchange'], token_exchange_audiences: ['svc-upstream', IDP_API] });
  // "down" names a provider nothing answers for (port 9, discard).
  strict = await startPortcullis({ token_exchange_clients: ['svc-exchange'], token_exchange_audiences: ['svc-upstream'] }, [
    { id: 'down', name: 'Down IdP', issuer: 'http://127.0.0.1:9', client_id: 'portcullis', client_secret: 'unused', fetch_timeout_ms: 1000 },
  ]);
  await idp.configure([
    {
      client_id: 'portcullis',
      client_secret: IDP_SECRET,
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [open, strict].map((s) => `${s.server.issuer}/oauth2/upstream/corp/callback`),
      token_endpoint_auth_method: 'client_secret_basic',
    },
    { client_id: 'svc-upstream', client_secret: SERVICE_SECRET, grant_types: ['authorization_code', 'client_credentials'], redirect_uris: [SERVICE_REDIRECT], token_endpoint_auth_method: 'client_secret_basic' },
  ]);
  for (const s of [open, strict]) {
    for (const clientId of ['svc-exchange', 'svc-other']) {
      const { secret } = await addClient(ctxOf(s), { clientId, type: 'confidential', grantTypes: ['client_credentials'], redirectUris: [], scopes: ['documents'], roles: [], firstParty: false });
      secrets[`${s.server.issuer}:${clientId}`] = secret!;
    }
  }
}, 60_000);

afterAll(async () => {
  await open?.close();
  await strict?.close();
  await idp?.close();
});

// ---------------------------------------------------------------------------------------------
// helpers

const ctxOf = (s: Sidecar): IssuerContext => s.server.tokens!.ctx;

/** The code of a finished run: the callback redirected the browser to the application. */
function codeOf(run: UpstreamRun): string {
  expect(run.callback.status).toBe(303);
  const location = new URL(run.callback.headers.get('location')!);
  expect(location.href.startsWith(RP_REDIRECT)).toBe(true);
  expect(location.searchParams.get('state')).toBe('rp-state');
  return location.searchParams.get('code')!;
}

const alertOf = (html: string) => /<p\b[^>]*role="alert"[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1];

async function auditRows(s: Sidecar, type: string) {
  return s.server.tokens!.ctx.store.audit.query({ limit: 50, type });
}

function adminPost(s: Sidecar, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${s.server.adminPort}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
}

function exchange(clientId: string, fields: Record<string, string>, at: Sidecar = open): Promise<Response> {
  const issuer = at.server.issuer!;
  return fetch(`${issuer}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secrets[`${issuer}:${clientId}`]}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', ...fields }).toString(),
  });
}

function checkStatus(s: Sidecar, token: string): Promise<number> {
  return s.client.check(httpCheckRequest('GET', '/documents', { authorization: `Bearer ${token}` })).then((r: CheckResponse) => (r.httpResponse.case === 'okResponse' ? 200 : (r.httpResponse.value?.status?.code ?? 0)));
}

/** Redeems the code of a finished run at Portcullis as the `portal` application (openid-client); returns the tokens. */
async function portalTokens(s: Sidecar, run: UpstreamRun) {
  const issuer = s.server.issuer!;
  const secret = secrets[`${issuer}:portal`]!;
  const config = await oidc.discovery(new URL(issuer), 'portal', secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
  codeOf(run);
  return oidc.authorizationCodeGrant(config, new URL(run.callback.headers.get('location')!), { pkceCodeVerifier: run.verifier, expectedState: 'rp-state', idTokenExpected: true });
}

/** A service signs a user in at the provider itself (as `svc-upstream`, for the provider's API) and gets an ID token and a JWT access token. */
async function serviceTokens(account: string) {
  const config = await oidc.discovery(new URL(idp.issuer), 'svc-upstream', SERVICE_SECRET, oidc.ClientSecretBasic(SERVICE_SECRET), { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: SERVICE_REDIRECT, scope: 'openid email api:read', resource: IDP_API, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce });
  const session = new BrowserSession();
  idp.loginAs(account);
  const { next } = await follow(session, await session.fetch(url), (u) => u.href.startsWith(SERVICE_REDIRECT));
  const tokens = await oidc.authorizationCodeGrant(config, next!, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }, { resource: IDP_API });
  return { config, idToken: tokens.id_token!, accessToken: tokens.access_token };
}

// ---------------------------------------------------------------------------------------------

describe('login through an external identity provider', () => {
  it('offers "Sign in with" on the login page and lets its form go to the provider (CSP form-action)', async () => {
    idp.accounts.set('page-sub', { email: 'page@corp.example', email_verified: true });
    const run = await loginThroughProvider(idp, open, 'page-sub');
    expect(run.loginHtml).toContain('>Sign in with Corp SSO</button>');
    expect(run.loginHtml).toMatch(/<form method="post" action="\/interaction\/upstream"/);
    expect(run.loginPage.headers.get('content-security-policy')).toMatch(new RegExp(`form-action 'self' http://127\\.0\\.0\\.1:9 ${idp.issuer.replace(/\./g, '\\.')};`));
    expect(run.loginPage.headers.get('content-security-policy')).toContain("default-src 'none'");
    codeOf(run);
  });

  it('links the first login of an account to the one user with the same verified email, and reuses the link', async () => {
    const ctx = ctxOf(open);
    const alice = await createTestUser(ctx, { prefix: 'alice', email: 'Alice@Corp.example', roles: ['editor'] });
    idp.accounts.set('alice-sub', { email: 'alice@corp.example', email_verified: true, name: 'Alice' });
    const linkedBefore = (await auditRows(open, 'identity.linked')).length;

    const tokens = await portalTokens(open, await loginThroughProvider(idp, open, 'alice-sub'));
    expect(tokens.claims()).toMatchObject({ sub: alice.user.id, amr: ['fed'] });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: alice.user.id, roles: ['editor'], amr: ['fed'] });
    expect(await ctx.store.identities.find('corp', 'alice-sub')).toMatchObject({ userId: alice.user.id, email: 'alice@corp.example', needsReconsent: false });
    const linked = await auditRows(open, 'identity.linked');
    expect(linked).toHaveLength(linkedBefore + 1);
    expect(linked[0]).toMatchObject({ outcome: 'success', actor: ctx.audit.userRef(alice.user.id), details: { provider: 'corp', by: 'verified_email' } });

    const again = await portalTokens(open, await loginThroughProvider(idp, open, 'alice-sub'));
    expect(again.claims()!.sub).toBe(alice.user.id);
    expect(await auditRows(open, 'identity.linked')).toHaveLength(linkedBefore + 1);
    expect((await auditRows(open, 'login.upstream')).filter((r) => r.outcome === 'success' && r.actor === ctx.audit.userRef(alice.user.id))).toHaveLength(2);
  });

  it('provisions a user without a password for an account nobody has, with the default and the mapped roles', async () => {
    const ctx = ctxOf(open);
    idp.accounts.set('bob-sub', { email: 'bob@corp.example', email_verified: true, name: 'Bob Builder', groups: ['editor'] });
    const before = await metricValue(open.metrics, 'auth_login_attempts_total', { method: 'upstream', client_type: 'browser' });
    const tokens = await portalTokens(open, await loginThroughProvider(idp, open, 'bob-sub'));
    const link = (await ctx.store.identities.find('corp', 'bob-sub'))!;
    const user = (await ctx.store.users.byId(link.userId))!;
    expect(user).toMatchObject({ username: 'corp+bob-sub', name: 'Bob Builder', email: 'bob@corp.example', roles: ['viewer', 'editor'], disabled: false });
    expect(tokens.claims()!.sub).toBe(user.id);
    expect(await metricValue(open.metrics, 'auth_login_attempts_total', { method: 'upstream', client_type: 'browser' })).toBe(before + 1);
    expect((await auditRows(open, 'identity.provisioned'))[0]!).toMatchObject({ outcome: 'success', actor: ctx.audit.userRef(user.id), details: { provider: 'corp', roles: ['viewer', 'editor'] } });

    // No password exists, so none is accepted.
    expect(await ctx.store.users.passwordHash(user.id)).toBeUndefined();
    const login = await fetch(`${open.server.issuer}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'corp+bob-sub', password: '' }) });
    expect(login.status).toBe(401);
  });

  it('does not link by an email the provider did not verify: that account gets its own user', async () => {
    const ctx = ctxOf(open);
    const victim = await createTestUser(ctx, { prefix: 'victim', email: 'victim@corp.example' });
    idp.accounts.set('mallory-sub', { email: 'victim@corp.example', email_verified: false });
    const tokens = await portalTokens(open, await loginThroughProvider(idp, open, 'mallory-sub'));
    expect(tokens.claims()!.sub).not.toBe(victim.user.id);
    expect((await ctx.store.users.byId(String(tokens.claims()!.sub)))?.username).toBe('corp+mallory-sub');
    expect(await ctx.store.identities.forUser(victim.user.id)).toEqual([]);
  });

  it('refuses an account that maps to nobody with a generic page, a metric and an audit row; the page still takes a password', async () => {
    const ctx = ctxOf(strict);
    idp.accounts.set('stranger-sub', { email: 'stranger@corp.example', email_verified: true });
    const local = await createTestUser(ctx, { prefix: 'local' });
    const failures = await metricValue(strict.metrics, 'auth_login_failures_total', { method: 'upstream', reason: 'unmapped_external_identity' });

    const run = await loginThroughProvider(idp, strict, 'stranger-sub');
    expect(run.callback.status).toBe(403);
    const html = await run.callback.text();
    expect(alertOf(html)).toBe(UPSTREAM_FAILED_MESSAGE);
    expect(html).not.toMatch(/unmapped|stranger/i);
    expect(await metricValue(strict.metrics, 'auth_login_failures_total', { method: 'upstream', reason: 'unmapped_external_identity' })).toBe(failures + 1);
    expect((await auditRows(strict, 'login.upstream'))[0]).toMatchObject({ outcome: 'failure', reason: 'unmapped_external_identity', actor: null, details: { provider: 'corp' } });
    expect(await ctx.store.users.byUsername('corp+stranger-sub')).toBeUndefined();

    const page = parseInteractionPage(html, run.callbackUrl, 403);
    const res = await run.session.postForm(page.action, { csrf: page.csrf, username: local.username, password: local.password });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!).searchParams.get('code')).toBeTruthy();
  });

  it('shows the same generic page when the user says no at the provider', async () => {
    const before = await metricValue(open.metrics, 'auth_login_failures_total', { method: 'upstream', reason: 'upstream_denied' });
    const run = await loginThroughProvider(idp, open, 'deny');
    expect(run.callback.status).toBe(401);
    expect(alertOf(await run.callback.text())).toBe(UPSTREAM_FAILED_MESSAGE);
    expect(await metricValue(open.metrics, 'auth_login_failures_total', { method: 'upstream', reason: 'upstream_denied' })).toBe(before + 1);
  });

  it('says so on the login page when a provider cannot be reached, and the page keeps working', async () => {
    const issuer = strict.server.issuer!;
    const authorize = new URL(`${issuer}/oauth2/authorize`);
    authorize.search = new URLSearchParams({ client_id: 'portal', redirect_uri: RP_REDIRECT, response_type: 'code', scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' }).toString();
    const session = new BrowserSession();
    const login = await session.fetch(authorize);
    const html = await login.text();
    expect(html).toContain('>Sign in with Down IdP</button>');
    const before = await metricValue(strict.metrics, 'auth_login_failures_total', { method: 'upstream', reason: 'upstream_unavailable' });
    const page = parseInteractionPage(html, authorize, login.status);
    const res = await session.postForm(new URL('/interaction/upstream', issuer), { csrf: page.csrf, provider: 'down' });
    expect(res.status).toBe(503);
    expect(alertOf(await res.text())).toMatch(/cannot be reached/);
    expect(await metricValue(strict.metrics, 'auth_login_failures_total', { method: 'upstream', reason: 'upstream_unavailable' })).toBe(before + 1);
    // A provider the page does not offer, or a missing CSRF token, changes nothing.
    expect((await session.postForm(new URL('/interaction/upstream', issuer), { csrf: page.csrf, provider: 'nope' })).status).toBe(400);
    expect((await session.postForm(new URL('/interaction/upstream', issuer), { provider: 'corp' })).status).toBe(400);
  });

  it('accepts a provider callback once, only in the browser that started the login, and only with its state', async () => {
    idp.accounts.set('replay-sub', { email: 'replay@corp.example', email_verified: true });
    const run = await loginThroughProvider(idp, open, 'replay-sub', { callback: false });
    const expired = async (res: Response) => {
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('Sign-in expired');
    };
    // Another browser (no interaction cookie), or a forged state: nothing happens, and nothing is spent.
    await expired(await new BrowserSession().fetch(run.callbackUrl));
    const forged = new URL(run.callbackUrl);
    forged.searchParams.set('state', 'forged');
    await expired(await run.session.fetch(forged));
    codeOf({ ...run, callback: await run.session.fetch(run.callbackUrl) });
    await expired(await run.session.fetch(run.callbackUrl));
  });

  it('still asks a linked user with TOTP for the code, and records the provider login instead of a password', async () => {
    const ctx = ctxOf(open);
    const user = await createTestUser(ctx, { prefix: 'mfa', email: 'mfa@corp.example', mfa: true });
    idp.accounts.set('mfa-sub', { email: 'mfa@corp.example', email_verified: true });
    const run = await loginThroughProvider(idp, open, 'mfa-sub');
    const mfaPage = parseInteractionPage(await run.callback.text(), run.callbackUrl, run.callback.status);
    expect(mfaPage.stage).toBe('mfa');
    const done = await run.session.postForm(mfaPage.action, { csrf: mfaPage.csrf, code: await totpCode(user.totpSecret!) });
    const tokens = await portalTokens(open, { ...run, callback: done });
    expect(tokens.claims()).toMatchObject({ sub: user.user.id, amr: ['fed', 'otp', 'mfa'] });
  });
});

describe('brokered upstream tokens', () => {
  const basic = `Basic ${Buffer.from(`portcullis:${IDP_SECRET}`).toString('base64')}`;

  it('refreshes the stored upstream grant on demand, then asks for re-consent once the provider revoked it', async () => {
    const ctx = ctxOf(open);
    idp.accounts.set('carol-sub', { email: 'carol@corp.example', email_verified: true });
    await portalTokens(open, await loginThroughProvider(idp, open, 'carol-sub'));
    const link = (await ctx.store.identities.find('corp', 'carol-sub'))!;
    expect(link.refreshTokenCiphertext).toMatch(/^v1\./);
    const upstreamRefresh = ctx.kek.decrypt(link.refreshTokenCiphertext!, 'upstream-refresh-token');
    expect(link.refreshTokenCiphertext).not.toContain(upstreamRefresh);
    const count = (outcome: string) => metricValue(open.metrics, 'auth_upstream_token_refresh_total', { provider: 'corp', outcome });
    const [success, failed] = [await count('success'), await count('failed')];

    const res = await adminPost(open, `/admin/users/${link.userId}/upstream/corp/token`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const brokered = (await res.json()) as { access_token: string; token_type: string; expires_in: number; provider: string };
    expect(brokered).toMatchObject({ token_type: 'Bearer', provider: 'corp' });
    expect(brokered.expires_in).toBeGreaterThan(0);
    // The access token is the provider's own, good at its userinfo endpoint.
    const me = await fetch(`${idp.issuer}/me`, { headers: { authorization: `Bearer ${brokered.access_token}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ sub: 'carol-sub' });
    expect(await count('success')).toBe(success + 1);

    // The user (or the provider's admin) revokes the grant at the provider.
    const current = (await ctx.store.identities.find('corp', 'carol-sub'))!;
    const revoke = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({ token: ctx.kek.decrypt(current.refreshTokenCiphertext!, 'upstream-refresh-token'), token_type_hint: 'refresh_token' }).toString(),
    });
    expect(revoke.status).toBe(200);

    const refused = await adminPost(open, `/admin/users/${link.userId}/upstream/corp/token`);
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({ error: 'reconsent_required' });
    expect(await count('failed')).toBe(failed + 1);
    expect(await ctx.store.identities.find('corp', 'carol-sub')).toMatchObject({ needsReconsent: true, refreshTokenCiphertext: null });
    expect((await auditRows(open, 'upstream.token_refresh'))[0]).toMatchObject({ outcome: 'failure', reason: 'upstream_invalid_grant', actor: ctx.audit.userRef(link.userId), details: { provider: 'corp', needs_reconsent: true } });
    const listed = await fetch(`http://127.0.0.1:${open.server.adminPort}/admin/users/${link.userId}/upstream`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(await listed.json()).toMatchObject({ links: [{ provider: 'corp', subject: 'carol-sub', needs_reconsent: true, token_stored: false }] });

    // Asking again does not bother the provider; signing in through it again restores the grant.
    expect((await adminPost(open, `/admin/users/${link.userId}/upstream/corp/token`)).status).toBe(409);
    expect(await count('failed')).toBe(failed + 1);
    await portalTokens(open, await loginThroughProvider(idp, open, 'carol-sub'));
    expect(await ctx.store.identities.find('corp', 'carol-sub')).toMatchObject({ needsReconsent: false });
    expect((await adminPost(open, `/admin/users/${link.userId}/upstream/corp/token`)).status).toBe(200);
    expect(await count('success')).toBe(success + 2);
  });

  it('answers 404 for a user without a stored upstream token, and for a provider that stores none', async () => {
    const local = await createTestUser(ctxOf(open), { prefix: 'nolink' });
    expect((await adminPost(open, `/admin/users/${local.user.id}/upstream/corp/token`)).status).toBe(404);
    expect((await adminPost(open, `/admin/users/${local.user.id}/upstream/other/token`)).status).toBe(404);
    expect((await adminPost(strict, `/admin/users/${local.user.id}/upstream/corp/token`)).status).toBe(404);
    const noKey = await fetch(`http://127.0.0.1:${open.server.adminPort}/admin/users/${local.user.id}/upstream/corp/token`, { method: 'POST' });
    expect(noKey.status).toBe(401);
  });
});

describe('token exchange (RFC 8693) and tokens of the provider side by side', () => {
  const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
  const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
  let erin: Awaited<ReturnType<typeof createTestUser>>;
  let upstream: Awaited<ReturnType<typeof serviceTokens>>;

  beforeAll(async () => {
    erin = await createTestUser(ctxOf(open), { prefix: 'erin', email: 'erin@corp.example', roles: ['viewer'] });
    idp.accounts.set('erin-sub', { email: 'erin@corp.example', email_verified: true });
    upstream = await serviceTokens('erin-sub');
  });

  it('gives an allowed client a Portcullis access token for the user of a provider ID token', async () => {
    const res = await exchange('svc-exchange', { subject_token: upstream.idToken, subject_token_type: ID_TOKEN });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer', scope: 'documents' });
    expect(body.refresh_token).toBeUndefined();
    expect(body.id_token).toBeUndefined();
    expect(decodeJwt(String(body.access_token))).toMatchObject({ iss: open.server.issuer, sub: erin.user.id, client_id: 'svc-exchange', roles: ['viewer'], amr: ['fed'] });
    expect(await checkStatus(open, String(body.access_token))).toBe(200);
    expect((await auditRows(open, 'token.exchange'))[0]).toMatchObject({ outcome: 'success', clientId: 'svc-exchange', actor: ctxOf(open).audit.userRef(erin.user.id), details: { provider: 'corp', subject_token_type: 'id_token' } });
  });

  it('exchanges a JWT access token of the provider (RFC 9068) the same way', async () => {
    expect(decodeJwt(upstream.accessToken).aud).toBe(IDP_API);
    const res = await exchange('svc-exchange', { subject_token: upstream.accessToken, subject_token_type: ACCESS_TOKEN, scope: 'documents' });
    expect(res.status).toBe(200);
    expect(decodeJwt(String(((await res.json()) as Record<string, unknown>).access_token)).sub).toBe(erin.user.id);
  });

  it('refuses a client not listed for the provider', async () => {
    const res = await exchange('svc-other', { subject_token: upstream.idToken, subject_token_type: ID_TOKEN });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('refuses a token of the other type, a token of another issuer, and garbage, with one answer', async () => {
    const portcullisToken = String(((await (await exchange('svc-exchange', { subject_token: upstream.idToken, subject_token_type: ID_TOKEN })).json()) as Record<string, unknown>).access_token);
    for (const [token, type] of [
      [upstream.idToken, ACCESS_TOKEN],
      [upstream.accessToken, ID_TOKEN],
      [portcullisToken, ACCESS_TOKEN],
      ['not-a-token', ID_TOKEN],
      [`${upstream.idToken.slice(0, -4)}AAAA`, ID_TOKEN],
    ] as const) {
      const res = await exchange('svc-exchange', { subject_token: token, subject_token_type: type });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'the subject_token is invalid, expired, or not accepted' });
    }
    const reasons = (await auditRows(open, 'token.issued')).filter((r) => r.outcome === 'failure').map((r) => r.reason);
    expect(reasons).toEqual(expect.arrayContaining(['subject_token_type_mismatch', 'subject_token_unknown_issuer', 'subject_token_not_jwt', 'subject_token_signature']));
  });

  it('refuses an account that maps to nobody at a provider that neither links nor provisions', async () => {
    idp.accounts.set('ghost-sub', { email: 'ghost@corp.example', email_verified: true });
    const ghost = await serviceTokens('ghost-sub');
    const res = await exchange('svc-exchange', { subject_token: ghost.idToken, subject_token_type: ID_TOKEN }, strict);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect((await auditRows(strict, 'token.exchange'))[0]).toMatchObject({ outcome: 'failure', clientId: 'svc-exchange', reason: 'unmapped_external_identity', details: { provider: 'corp' } });
    expect(await ctxOf(strict).store.identities.find('corp', 'ghost-sub')).toBeUndefined();
  });

  it('advertises the grant in discovery', async () => {
    const doc = (await (await fetch(`${open.server.issuer}/.well-known/openid-configuration`)).json()) as { grant_types_supported: string[] };
    expect(doc.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:token-exchange');
  });

  it('trusts on the ext_authz path both tokens the provider issues for its API and Portcullis tokens', async () => {
    const service = await oidc.clientCredentialsGrant(upstream.config, { resource: IDP_API, scope: 'api:read' });
    expect(decodeJwt(service.access_token)).toMatchObject({ iss: idp.issuer, aud: IDP_API, roles: ['viewer'] });
    const exchanged = String(((await (await exchange('svc-exchange', { subject_token: upstream.idToken, subject_token_type: ID_TOKEN })).json()) as Record<string, unknown>).access_token);
    expect(await checkStatus(open, service.access_token)).toBe(200);
    expect(await checkStatus(open, exchanged)).toBe(200);
    expect(await checkStatus(open, `${service.access_token.slice(0, -4)}AAAA`)).toBe(401);
  });
});
