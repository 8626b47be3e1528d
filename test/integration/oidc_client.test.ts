import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { addClient, type NewClientInput } from '../../src/issuer/clients.js';
import type { IssuerContext } from '../../src/issuer/context.js';
import { completeAuthorization, createTestUser, openAuthorization, INTERACTION_COOKIE, type TestUser } from '../helpers/login_flow.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * Portcullis' token module against the certified relying-party library openid-client v6, with no
 * special cases: the only option is `allowInsecureRequests`, because everything runs over plain
 * http on 127.0.0.1. The login pages are driven with plain fetch (test/helpers/login_flow.ts).
 */

// Nothing listens here: the final redirect to the client is read from `Location`, never followed.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const SPA_REDIRECT_URI = 'http://127.0.0.1:9/spa/callback';
const USER_SCOPE = 'openid profile email offline_access';

let sidecar: Sidecar;
let ctx: IssuerContext;
let issuer: string;
const secrets: Record<string, string> = {};
let jwtClientKey: CryptoKey;

async function registerClient(c: Partial<NewClientInput> & Pick<NewClientInput, 'clientId' | 'type' | 'grantTypes'>): Promise<void> {
  const { secret } = await addClient(ctx, { redirectUris: [], scopes: [], roles: [], firstParty: false, ...c });
  if (secret) secrets[c.clientId] = secret;
}

beforeAll(async () => {
  // Many sign-ins from 127.0.0.1 within a minute: the per-IP login rate limit is not under test here.
  sidecar = await startSidecar({ token_module: { rate_limit: { login_per_minute: 1000 } } });
  ctx = sidecar.server.tokens!.ctx;
  issuer = sidecar.server.issuer!;

  await registerClient({ clientId: 'svc-basic', type: 'confidential', authMethod: 'client_secret_basic', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'] });
  await registerClient({ clientId: 'svc-post', type: 'confidential', authMethod: 'client_secret_post', grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'] });
  await registerClient({ clientId: 'svc-no-roles', type: 'confidential', grantTypes: ['client_credentials'], scopes: ['documents'] });
  await registerClient({ clientId: 'resource-server', type: 'confidential', grantTypes: ['client_credentials'] });
  // A third-party web application: the user is asked for consent.
  await registerClient({ clientId: 'webapp', name: 'Example Web App', type: 'confidential', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT_URI], scopes: USER_SCOPE.split(' ') });
  // A first-party web application: no consent page.
  await registerClient({ clientId: 'portal', type: 'confidential', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT_URI], scopes: USER_SCOPE.split(' '), firstParty: true });
  await registerClient({ clientId: 'spa', type: 'public', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [SPA_REDIRECT_URI], scopes: USER_SCOPE.split(' '), firstParty: true });

  const { privateKey, publicKey } = await generateKeyPair('ES256');
  jwtClientKey = privateKey;
  const jwk = { ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig', kid: 'jwt-client-1' };
  await registerClient({ clientId: 'jwt-client', type: 'confidential', authMethod: 'private_key_jwt', jwks: { keys: [jwk] }, grantTypes: ['client_credentials'], scopes: ['documents'], roles: ['viewer'] });
});

afterAll(async () => {
  await sidecar?.close();
});

// ---------------------------------------------------------------------------------------------
// helpers

function configFor(clientId: string, auth?: oidc.ClientAuth): Promise<oidc.Configuration> {
  const secret = secrets[clientId];
  return oidc.discovery(new URL(issuer), clientId, secret === undefined ? undefined : { client_secret: secret }, auth, { execute: [oidc.allowInsecureRequests] });
}

const basicConfig = (clientId: string) => configFor(clientId, oidc.ClientSecretBasic(secrets[clientId]));
const rsConfig = () => basicConfig('resource-server');

interface AuthorizationRun {
  callback: URL;
  stages: string[];
  verifier: string;
  state: string;
  nonce: string;
}

/** Builds the authorization URL with openid-client and signs the user in on the Portcullis pages. */
async function authorize(config: oidc.Configuration, user: TestUser, redirectUri = REDIRECT_URI, scope = USER_SCOPE): Promise<AuthorizationRun> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const { callback, stages } = await completeAuthorization(url, { username: user.username, password: user.password, totpSecret: user.totpSecret });
  return { callback, stages, verifier, state, nonce };
}

/** Exchanges the code with openid-client; `verifier: null` leaves code_verifier out of the request. */
function exchange(config: oidc.Configuration, run: AuthorizationRun, verifier: string | null = run.verifier) {
  return oidc.authorizationCodeGrant(config, run.callback, { ...(verifier === null ? {} : { pkceCodeVerifier: verifier }), expectedState: run.state, expectedNonce: run.nonce });
}

/** Authorization code flow end to end; returns the token response. */
async function signIn(clientId: string, user: TestUser) {
  const config = await basicConfig(clientId);
  const run = await authorize(config, user);
  return { config, run, tokens: await exchange(config, run) };
}

interface OAuthFailure {
  status: number;
  error: string;
  body: Record<string, unknown>;
  headers: Headers;
}

/** The RFC 6749 error response behind an openid-client failure (a 4xx JSON body, with or without a challenge). */
async function failureOf(promise: Promise<unknown>): Promise<OAuthFailure> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError) return { status: err.status, error: err.error, body: err.cause, headers: err.response.headers };
    if (err instanceof oidc.WWWAuthenticateChallengeError) {
      const body = (await err.response.json()) as Record<string, unknown>;
      return { status: err.status, error: String(body.error), body, headers: err.response.headers };
    }
    throw err;
  }
  throw new Error('expected the request to be refused');
}

/** RFC 6749 §5.2: a JSON object with `error` (and an optional `error_description`), never cached. */
function expectRfc6749Error(f: { status: number; body: Record<string, unknown>; headers: Headers }, error: string, status = 400): void {
  expect(f.status).toBe(status);
  expect(f.body.error).toBe(error);
  expect(f.headers.get('content-type')).toMatch(/^application\/json/);
  expect(f.headers.get('cache-control')).toBe('no-store');
  expect(Object.keys(f.body).every((k) => ['error', 'error_description', 'error_uri'].includes(k))).toBe(true);
  // error and error_description: %x20-21 / %x23-5B / %x5D-7E only.
  for (const k of ['error', 'error_description']) if (f.body[k] !== undefined) expect(String(f.body[k])).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
}

async function expectOAuthError(promise: Promise<unknown>, error: string, status = 400): Promise<OAuthFailure> {
  const f = await failureOf(promise);
  expectRfc6749Error(f, error, status);
  return f;
}

async function check(method: string, path: string, accessToken: string): Promise<CheckResponse> {
  return sidecar.client.check(httpCheckRequest(method, path, { authorization: `Bearer ${accessToken}` }));
}

function httpStatus(res: CheckResponse): number {
  if (res.httpResponse.case === 'okResponse') return 200;
  if (res.httpResponse.case === 'deniedResponse') return res.httpResponse.value.status?.code ?? 403;
  throw new Error(`unexpected response ${res.httpResponse.case}`);
}

function upstreamHeader(res: CheckResponse, name: string): string | undefined {
  if (res.httpResponse.case !== 'okResponse') return undefined;
  return res.httpResponse.value.headers.find((h) => h.header?.key === name)?.header?.value;
}

/** OIDC Core §3.1.3.6: base64url of the left half of the SHA-256 of the access token (ES256). */
const atHash = (accessToken: string) => createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');

const tokenEndpoint = () => `${issuer}/oauth2/token`;

function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString(), redirect: 'manual' });
}

async function rawFailure(res: Response): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

// ---------------------------------------------------------------------------------------------

describe('discovery and client_credentials', () => {
  it('publishes metadata that openid-client discovers and validates against the issuer URL', async () => {
    const config = await basicConfig('svc-basic');
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(issuer);
    expect(meta.token_endpoint).toBe(`${issuer}/oauth2/token`);
    expect(meta.supportsPKCE('S256')).toBe(true);
    expect(meta.supportsPKCE('plain')).toBe(false);
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']));
  });

  it('issues a token to a client_secret_basic client that the ext_authz path accepts with the client roles', async () => {
    const tokens = await oidc.clientCredentialsGrant(await basicConfig('svc-basic'));
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe('documents');
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.expiresIn()).toBeGreaterThan(0);
    const res = await check('GET', '/documents', tokens.access_token);
    expect(httpStatus(res)).toBe(200);
    expect(upstreamHeader(res, 'x-portcullis-subject')).toBe('svc-basic');
    expect(upstreamHeader(res, 'x-portcullis-roles')).toBe('viewer');
    // viewer may read but not create
    expect(httpStatus(await check('POST', '/documents', tokens.access_token))).toBe(403);
  });

  it('issues a token to a client_secret_post client that the ext_authz path accepts', async () => {
    const tokens = await oidc.clientCredentialsGrant(await configFor('svc-post', oidc.ClientSecretPost(secrets['svc-post'])));
    const res = await check('GET', '/documents/d1', tokens.access_token);
    expect(httpStatus(res)).toBe(200);
    expect(upstreamHeader(res, 'x-portcullis-subject')).toBe('svc-post');
  });

  it('holds each client to its registered authentication method', async () => {
    // svc-post is registered for client_secret_post: the right secret sent the other way is refused.
    const f = await expectOAuthError(oidc.clientCredentialsGrant(await configFor('svc-post', oidc.ClientSecretBasic(secrets['svc-post']))), 'invalid_client', 401);
    expect(f.headers.get('www-authenticate')).toMatch(/^Basic /);
    await expectOAuthError(oidc.clientCredentialsGrant(await configFor('svc-basic', oidc.ClientSecretBasic('not-the-secret'))), 'invalid_client', 401);
  });

  it('accepts the token of a client without roles as authenticated and leaves the decision to policy', async () => {
    const tokens = await oidc.clientCredentialsGrant(await basicConfig('svc-no-roles'));
    const res = await check('GET', '/documents', tokens.access_token);
    expect(httpStatus(res)).toBe(403); // authenticated (not 401), but no policy permits it
  });
});

describe('authorization code with PKCE', () => {
  it('signs a TOTP user in through the login, MFA and consent pages and returns a verified ID token and userinfo', async () => {
    const user = await createTestUser(ctx, { prefix: 'mfa', mfa: true, roles: ['admin'], name: 'Mia Admin', email: 'mia@example.com' });
    expect(user.totpUri).toContain(`secret=${user.totpSecret}`);
    const config = await basicConfig('webapp');
    const run = await authorize(config, user);
    expect(run.stages).toEqual(['login', 'mfa', 'consent']);
    expect(run.callback.origin + run.callback.pathname).toBe(REDIRECT_URI);
    expect(run.callback.searchParams.get('iss')).toBe(issuer); // RFC 9207
    expect(run.callback.searchParams.get('state')).toBe(run.state);

    const tokens = await exchange(config, run);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope).toBe(USER_SCOPE);
    const claims = tokens.claims()!;
    expect(claims.iss).toBe(issuer);
    expect(claims.aud).toBe('webapp');
    expect(claims.sub).toBe(user.user.id);
    expect(claims.nonce).toBe(run.nonce);
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
    expect(claims.at_hash).toBe(atHash(tokens.access_token));
    expect(claims.auth_time).toEqual(expect.any(Number));
    expect(claims.preferred_username).toBe(user.username);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.user.id);
    expect(info).toMatchObject({ sub: user.user.id, preferred_username: user.username, name: 'Mia Admin', email: 'mia@example.com' });

    // The ext_authz path sees the MFA: an admin may delete only with a second factor.
    const res = await check('DELETE', '/documents/d2', tokens.access_token);
    expect(httpStatus(res)).toBe(200);
    expect(upstreamHeader(res, 'x-portcullis-subject')).toBe(user.user.id);
  });

  it('skips the consent page for a first-party client, and a password-only login is no MFA to policy', async () => {
    const user = await createTestUser(ctx, { prefix: 'pwd', roles: ['admin'] });
    const config = await basicConfig('portal');
    const run = await authorize(config, user);
    expect(run.stages).toEqual(['login']);
    const tokens = await exchange(config, run);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(user.user.id);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.at_hash).toBe(atHash(tokens.access_token));
    expect(httpStatus(await check('POST', '/documents', tokens.access_token))).toBe(200);
    expect(httpStatus(await check('DELETE', '/documents/d2', tokens.access_token))).toBe(403);
  });

  it('lets a public client exchange a code without any secret, with PKCE', async () => {
    const user = await createTestUser(ctx, { prefix: 'spa' });
    const config = await configFor('spa', oidc.None());
    const run = await authorize(config, user, SPA_REDIRECT_URI);
    expect(run.stages).toEqual(['login']);
    const tokens = await exchange(config, run);
    expect(tokens.claims()!.sub).toBe(user.user.id);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  });

  it('refuses a public client token request without code_verifier (invalid_request)', async () => {
    const user = await createTestUser(ctx, { prefix: 'spa' });
    const config = await configFor('spa', oidc.None());
    const run = await authorize(config, user, SPA_REDIRECT_URI);
    await expectOAuthError(exchange(config, run, null), 'invalid_request');
  });

  it('returns access_denied to the client when the user denies consent', async () => {
    const user = await createTestUser(ctx, { prefix: 'deny' });
    const config = await basicConfig('webapp');
    const state = oidc.randomState();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    const { callback, stages } = await completeAuthorization(url, { username: user.username, password: user.password, consent: 'deny' });
    expect(stages).toEqual(['login', 'consent']);
    expect(callback.searchParams.get('code')).toBeNull();
    const err = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oidc.AuthorizationResponseError);
    expect((err as oidc.AuthorizationResponseError).error).toBe('access_denied');
  });

  it('sends an authorization request without code_challenge back to the client with invalid_request', async () => {
    const config = await configFor('spa', oidc.None());
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: SPA_REDIRECT_URI, scope: 'openid', state });
    const { response } = await openAuthorization(url);
    expect(response.status).toBe(303);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const callback = new URL(response.headers.get('location')!);
    expect(callback.origin + callback.pathname).toBe(SPA_REDIRECT_URI);
    const err = await oidc.authorizationCodeGrant(config, callback, { expectedState: state }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oidc.AuthorizationResponseError);
    expect((err as oidc.AuthorizationResponseError).error).toBe('invalid_request');
  });
});

describe('refresh token rotation', () => {
  it('returns a new refresh token on every use, with a fresh access token for the same user', async () => {
    const user = await createTestUser(ctx, { prefix: 'rot' });
    const { config, tokens } = await signIn('webapp', user);
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(first.refresh_token).toEqual(expect.any(String));
    expect(first.refresh_token).not.toBe(tokens.refresh_token);
    expect(first.access_token).not.toBe(tokens.access_token);
    expect(first.scope).toBe(USER_SCOPE);
    expect(decodeJwt(first.access_token).sub).toBe(user.user.id);
    const second = await oidc.refreshTokenGrant(config, first.refresh_token!);
    expect(second.refresh_token).not.toBe(first.refresh_token);
  });

  it('treats reuse of a rotated refresh token as theft: invalid_grant, and the newest token of the family dies too', async () => {
    const user = await createTestUser(ctx, { prefix: 'reuse' });
    const { config, tokens } = await signIn('webapp', user);
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await expectOAuthError(oidc.refreshTokenGrant(config, tokens.refresh_token!), 'invalid_grant');
    await expectOAuthError(oidc.refreshTokenGrant(config, rotated.refresh_token!), 'invalid_grant');
  });

  it('lets exactly one of two concurrent refreshes with the same token succeed', async () => {
    const user = await createTestUser(ctx, { prefix: 'race' });
    const { config, tokens } = await signIn('webapp', user);
    const results = await Promise.allSettled([oidc.refreshTokenGrant(config, tokens.refresh_token!), oidc.refreshTokenGrant(config, tokens.refresh_token!)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    await expectOAuthError(Promise.reject(rejected.reason), 'invalid_grant');
  });

  it('refuses a refresh token presented by another client without consuming it', async () => {
    const user = await createTestUser(ctx, { prefix: 'steal' });
    const { config, tokens } = await signIn('webapp', user);
    await expectOAuthError(oidc.refreshTokenGrant(await basicConfig('portal'), tokens.refresh_token!), 'invalid_grant');
    const still = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(still.refresh_token).not.toBe(tokens.refresh_token);
  });
});

describe('introspection and revocation', () => {
  it('reports a live access token as active with sub, client_id and scope to a resource server', async () => {
    const user = await createTestUser(ctx, { prefix: 'intro' });
    const { tokens } = await signIn('webapp', user);
    const answer = await oidc.tokenIntrospection(await rsConfig(), tokens.access_token);
    expect(answer).toMatchObject({ active: true, sub: user.user.id, client_id: 'webapp', scope: USER_SCOPE, iss: issuer });
    expect(answer.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('revoking a refresh token ends it: introspection says inactive and it no longer refreshes', async () => {
    const user = await createTestUser(ctx, { prefix: 'revrt' });
    const { config, tokens } = await signIn('webapp', user);
    expect(await oidc.tokenIntrospection(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' })).toMatchObject({ active: true, client_id: 'webapp', sub: user.user.id });
    await oidc.tokenRevocation(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' });
    expect(await oidc.tokenIntrospection(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' })).toEqual({ active: false });
    await expectOAuthError(oidc.refreshTokenGrant(config, tokens.refresh_token!), 'invalid_grant');
  });

  it('revoking an access token: introspection says inactive, ext_authz and userinfo refuse it', async () => {
    const user = await createTestUser(ctx, { prefix: 'revat', roles: ['viewer'] });
    const { config, tokens } = await signIn('webapp', user);
    expect(httpStatus(await check('GET', '/documents', tokens.access_token))).toBe(200);
    await oidc.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
    expect(await oidc.tokenIntrospection(await rsConfig(), tokens.access_token)).toEqual({ active: false });
    expect(httpStatus(await check('GET', '/documents', tokens.access_token))).toBe(401);
    const err = await oidc.fetchUserInfo(config, tokens.access_token, user.user.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oidc.WWWAuthenticateChallengeError);
    expect((err as oidc.WWWAuthenticateChallengeError).status).toBe(401);
  });

  it('answers revocation of an unknown token with 200 and introspection of garbage with active:false', async () => {
    const config = await basicConfig('webapp');
    await oidc.tokenRevocation(config, 'not-a-token');
    expect(await oidc.tokenIntrospection(await rsConfig(), 'not-a-token')).toEqual({ active: false });
  });
});

describe('private_key_jwt client authentication', () => {
  it('authenticates a client by its signed assertion through openid-client', async () => {
    const config = await configFor('jwt-client', oidc.PrivateKeyJwt(jwtClientKey));
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.scope).toBe('documents');
    expect(httpStatus(await check('GET', '/documents', tokens.access_token))).toBe(200);
    expect(await oidc.tokenIntrospection(await rsConfig(), tokens.access_token)).toMatchObject({ active: true, client_id: 'jwt-client', sub: 'jwt-client' });
    // A second request signs a new assertion (new jti): accepted as well.
    await oidc.clientCredentialsGrant(config);
  });

  it('refuses a replayed client assertion (same jti) with invalid_client', async () => {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'jwt-client-1' })
      .setIssuer('jwt-client')
      .setSubject('jwt-client')
      .setAudience(tokenEndpoint())
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(jwtClientKey);
    const body = { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
    const first = await postForm(tokenEndpoint(), body);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store'); // RFC 6749 §5.1
    expect(((await first.json()) as { access_token?: string }).access_token).toEqual(expect.any(String));
    const replay = await postForm(tokenEndpoint(), body);
    expectRfc6749Error(await rawFailure(replay), 'invalid_client', 401);
  });
});

describe('refused requests', () => {
  it('refuses a replayed authorization code and revokes what its first exchange issued', async () => {
    const user = await createTestUser(ctx, { prefix: 'replay', roles: ['viewer'] });
    const config = await basicConfig('webapp');
    const run = await authorize(config, user);
    const tokens = await exchange(config, run);
    expect(httpStatus(await check('GET', '/documents', tokens.access_token))).toBe(200);

    await expectOAuthError(exchange(config, run), 'invalid_grant');

    expect(await oidc.tokenIntrospection(await rsConfig(), tokens.access_token)).toEqual({ active: false });
    expect(httpStatus(await check('GET', '/documents', tokens.access_token))).toBe(401);
    expect(await oidc.tokenIntrospection(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' })).toEqual({ active: false });
    await expectOAuthError(oidc.refreshTokenGrant(config, tokens.refresh_token!), 'invalid_grant');
  });

  it('revokes what the first exchange issued even when the replay arrives while that exchange is still running', async () => {
    const user = await createTestUser(ctx, { prefix: 'race-code' });
    const config = await basicConfig('webapp');
    const run = await authorize(config, user);
    const body = { grant_type: 'authorization_code', code: run.callback.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: run.verifier };
    const auth = { authorization: `Basic ${Buffer.from(`webapp:${secrets.webapp}`).toString('base64')}` };
    const responses = await Promise.all([postForm(tokenEndpoint(), body, auth), postForm(tokenEndpoint(), body, auth)]);
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<Record<string, string>>;
    const won = bodies.filter((b) => b.access_token);
    const refused = responses.flatMap((r, i) => (bodies[i]!.error ? [{ status: r.status, body: bodies[i]!, headers: r.headers }] : []));
    // Depending on timing the first exchange either completes before the replay (its tokens are then
    // revoked) or sees the replay mark while still issuing (it revokes what it issued and answers
    // invalid_grant too). Never two successes, never a live token.
    expect(won.length).toBeLessThanOrEqual(1);
    expect(won.length + refused.length).toBe(2);
    for (const r of refused) expectRfc6749Error(r, 'invalid_grant');
    // RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: the tokens issued for a code used twice are revoked, whatever the timing.
    for (const w of won) {
      expect(await oidc.tokenIntrospection(await rsConfig(), w.access_token!)).toEqual({ active: false });
      expect(await oidc.tokenIntrospection(config, w.refresh_token!, { token_type_hint: 'refresh_token' })).toEqual({ active: false });
    }
    const issued = await ctx.store.audit.query({ limit: 10, type: 'authorization_code.replay' });
    expect(issued.length).toBeGreaterThan(0);
  });

  it('refuses a code exchange without code_verifier with invalid_request', async () => {
    const user = await createTestUser(ctx, { prefix: 'nover' });
    const config = await basicConfig('portal');
    const run = await authorize(config, user);
    await expectOAuthError(exchange(config, run, null), 'invalid_request');
  });

  it('refuses a code presented by another client without spending it', async () => {
    const user = await createTestUser(ctx, { prefix: 'othercl' });
    const config = await basicConfig('portal');
    const run = await authorize(config, user);
    await expectOAuthError(exchange(await basicConfig('webapp'), run), 'invalid_grant');
    const tokens = await exchange(config, run);
    expect(tokens.access_token).toBeTruthy();
  });

  it('refuses a code exchange with the wrong code_verifier with invalid_grant, and the code is spent', async () => {
    const user = await createTestUser(ctx, { prefix: 'badver' });
    const config = await basicConfig('portal');
    const run = await authorize(config, user);
    await expectOAuthError(exchange(config, run, oidc.randomPKCECodeVerifier()), 'invalid_grant');
    await expectOAuthError(exchange(config, run), 'invalid_grant');
  });

  it('shows a 400 error page for an unregistered redirect_uri and redirects nowhere', async () => {
    const config = await basicConfig('webapp');
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'http://127.0.0.1:9/evil',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
    });
    const { response, session } = await openAuthorization(url);
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(session.cookies.has(INTERACTION_COOKIE)).toBe(false);
    const html = await response.text();
    expect(html).toContain('redirect_uri is not registered');
    expect(html).not.toContain('/evil');
    expect(html).not.toMatch(/<form/i);
  });

  it('answers every token, introspection and revocation error as RFC 6749 JSON with Cache-Control: no-store', async () => {
    const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });
    const webapp = basic('webapp', secrets.webapp!);
    const cases: Array<[string, string, Record<string, string>, Record<string, string>, string, number]> = [
      ['token: no grant_type', '/oauth2/token', {}, webapp, 'invalid_request', 400],
      ['token: unknown grant_type', '/oauth2/token', { grant_type: 'password', username: 'a', password: 'b' }, webapp, 'unsupported_grant_type', 400],
      ['token: wrong secret', '/oauth2/token', { grant_type: 'client_credentials' }, basic('svc-basic', 'wrong'), 'invalid_client', 401],
      ['token: unknown client', '/oauth2/token', { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x' }, {}, 'invalid_client', 401],
      ['token: two auth methods', '/oauth2/token', { grant_type: 'client_credentials', client_secret: secrets['svc-basic']! }, basic('svc-basic', secrets['svc-basic']!), 'invalid_request', 400],
      ['token: grant not allowed', '/oauth2/token', { grant_type: 'client_credentials' }, webapp, 'unauthorized_client', 400],
      ['token: scope not allowed', '/oauth2/token', { grant_type: 'client_credentials', scope: 'admin' }, basic('svc-basic', secrets['svc-basic']!), 'invalid_scope', 400],
      ['token: unknown code', '/oauth2/token', { grant_type: 'authorization_code', code: 'nope', redirect_uri: REDIRECT_URI, code_verifier: 'a'.repeat(43) }, webapp, 'invalid_grant', 400],
      ['token: unknown refresh token', '/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'nope' }, webapp, 'invalid_grant', 400],
      ['token: public client with client_credentials', '/oauth2/token', { grant_type: 'client_credentials', client_id: 'spa' }, {}, 'unauthorized_client', 400],
      ['introspect: no token', '/oauth2/introspect', {}, basic('resource-server', secrets['resource-server']!), 'invalid_request', 400],
      ['introspect: public client', '/oauth2/introspect', { token: 'x', client_id: 'spa' }, {}, 'invalid_client', 401],
      ['revoke: wrong secret', '/oauth2/revoke', { token: 'x' }, basic('webapp', 'wrong'), 'invalid_client', 401],
      ['revoke: no token', '/oauth2/revoke', {}, webapp, 'invalid_request', 400],
    ];
    for (const [name, path, fields, headers, error, status] of cases) {
      const res = await postForm(`${issuer}${path}`, fields, headers);
      const f = await rawFailure(res);
      try {
        expectRfc6749Error(f, error, status);
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message} (got ${f.status} ${JSON.stringify(f.body)})`);
      }
      if (status === 401 && headers.authorization) expect(res.headers.get('www-authenticate'), name).toMatch(/^Basic /);
    }
    // A body that is not a form is refused the same way.
    const json = await fetch(`${issuer}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json', ...webapp }, body: JSON.stringify({ grant_type: 'client_credentials' }) });
    const f = await rawFailure(json);
    expect(f.body.error).toBe('invalid_request');
    expect(f.headers.get('cache-control')).toBe('no-store');
  });
});
