import type { ClientRecord } from '../store/index.js';
import { BUILTIN_LOGIN_CLIENT } from './builtin_client.js';
import type { IssuerContext } from './context.js';
import { InvalidCredentials, InvalidRequest, TooManyRequests, UnauthorizedClient } from './errors.js';
import { issueUserTokens } from './grants/issue.js';
import { verifyPasswordLogin } from './login.js';
import { completeMfaChallenge, startMfaChallenge } from './mfa_challenge.js';
import type { RateLimiter } from './rate_limit.js';
import { grantedScope } from './scope.js';
import type { TokenResponse } from './tokens.js';
import { inSpan } from '../telemetry/tracing.js';

export type LoginResponse = TokenResponse | { mfa_required: true; mfa_token: string; methods: string[] };

/** `POST /login`: password, then tokens or an MFA challenge. */
export function passwordLogin(ctx: IssuerContext, limiter: RateLimiter, body: Record<string, unknown>, ip: string | null): Promise<LoginResponse> {
  return inSpan('auth.login', { 'auth.client_type': 'api', 'auth.step': 'password' }, () => passwordStep(ctx, limiter, body, ip));
}

async function passwordStep(ctx: IssuerContext, limiter: RateLimiter, body: Record<string, unknown>, ip: string | null): Promise<LoginResponse> {
  await limit(limiter, ip);
  const { username, password } = body;
  if (typeof username !== 'string' || typeof password !== 'string' || username.length > 256 || password.length > 1024) throw new InvalidRequest('username and password are required strings');
  const client = await loginClient(ctx, body.client_id);
  const scope = grantedScope(client, typeof body.scope === 'string' ? body.scope : undefined).join(' ');
  const first = await verifyPasswordLogin(ctx, { username, password, ip, clientType: 'api' });
  try {
    if (first.mfaRequired) {
      // The client and scope are fixed now, not taken again from the second request.
      const mfaToken = await startMfaChallenge(ctx, first.user, first.authTime, { clientId: client.clientId, scope });
      return { mfa_required: true, mfa_token: mfaToken, methods: ['totp'] };
    }
    return await issue(ctx, client, first.user.id, scope, ['pwd'], first.authTime, ip);
  } finally {
    await first.audited;
  }
}

/** `POST /login/mfa`: the code for an `mfa_token`, then tokens. */
export function mfaLogin(ctx: IssuerContext, limiter: RateLimiter, body: Record<string, unknown>, ip: string | null): Promise<TokenResponse> {
  return inSpan('auth.login', { 'auth.client_type': 'api', 'auth.step': 'mfa' }, () => mfaStep(ctx, limiter, body, ip));
}

async function mfaStep(ctx: IssuerContext, limiter: RateLimiter, body: Record<string, unknown>, ip: string | null): Promise<TokenResponse> {
  await limit(limiter, ip);
  const { mfa_token: mfaToken, code } = body;
  if (typeof mfaToken !== 'string' || typeof code !== 'string' || mfaToken.length > 128 || code.length > 32) throw new InvalidRequest('mfa_token and code are required strings');
  const done = await completeMfaChallenge(ctx, mfaToken, code, ip);
  const client = await loginClient(ctx, done.bound.clientId);
  return issue(ctx, client, done.user.id, String(done.bound.scope ?? ''), done.amr, done.authTime, ip);
}

function issue(ctx: IssuerContext, client: ClientRecord, userId: string, scope: string, amr: string[], authTime: number, ip: string | null): Promise<TokenResponse> {
  return inSpan('auth.token.issue', { 'oauth.grant_type': 'login', 'oauth.client_id': client.clientId }, () => issueStep(ctx, client, userId, scope, amr, authTime, ip));
}

async function issueStep(ctx: IssuerContext, client: ClientRecord, userId: string, scope: string, amr: string[], authTime: number, ip: string | null): Promise<TokenResponse> {
  const end = ctx.metrics.tokenIssuance.startTimer({ grant_type: 'password_login' });
  const user = await ctx.store.users.byId(userId);
  if (!user || user.disabled) throw new InvalidCredentials('account_disabled');
  const { response } = await issueUserTokens(ctx, { client, user, scope, audience: ctx.settings.audience, resource: null, amr, authTime, nonce: null, jkt: undefined });
  end();
  await ctx.audit.record('token.issued', 'success', { userId, clientId: client.clientId, ip, details: { grant_type: 'login', amr } });
  return response;
}

async function loginClient(ctx: IssuerContext, clientId: unknown): Promise<ClientRecord> {
  const id = typeof clientId === 'string' && clientId !== '' ? clientId : BUILTIN_LOGIN_CLIENT;
  const client = await ctx.store.clients.byId(id);
  // A confidential client would be impersonated here (no client authentication on /login).
  if (!client || !client.firstParty || client.type !== 'public') throw new UnauthorizedClient('only first-party public clients may use /login');
  return client;
}

async function limit(limiter: RateLimiter, ip: string | null): Promise<void> {
  const wait = await limiter.take(ip ?? 'unknown');
  if (wait !== undefined) throw new TooManyRequests(wait);
}
