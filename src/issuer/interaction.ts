import { createHmac } from 'node:crypto';
import type { ChallengeRecord, ClientRecord } from '../store/index.js';
import type { AuthorizationRequest } from './authorize.js';
import { errorRedirect, withParams } from './authorize.js';
import type { IssuerContext } from './context.js';
import { OAuthError } from './errors.js';
import { verifyPasswordLogin, verifySecondFactor } from './login.js';
import type { RateLimiter } from './rate_limit.js';
import { randomToken, safeEqual, sha256 } from './secrets.js';
import { inSpan } from '../telemetry/tracing.js';
import { createUpstreamSteps } from './upstream/interaction_steps.js';
import type { PendingUpstream } from './upstream/login.js';

/**
 * The login pages of an authorization request: login → (MFA) → (consent) → redirect with a code.
 * The browser holds the interaction id in an HttpOnly cookie; every form carries a CSRF token
 * derived from it. Each step is allowed only in its stage, and the interaction is consumed
 * (compare-and-set) when the code is issued.
 */
export type Stage = 'login' | 'mfa' | 'consent';

export interface InteractionData extends Record<string, unknown> {
  request: AuthorizationRequest;
  stage: Stage;
  amr: string[];
  authTime: number | null;
  attempts: number;
  /** A login through an upstream provider in progress (one at a time; consumed by its callback). */
  upstream?: PendingUpstream | undefined;
}

export type Outcome =
  | { kind: 'page'; stage: Stage; status: number; error?: string; client: ClientRecord; request: AuthorizationRequest; csrf: string }
  | { kind: 'redirect'; location: string }
  /** To an upstream provider: the interaction (and its cookie) stays. */
  | { kind: 'upstream'; location: string }
  | { kind: 'expired' };

/** A live interaction in a given stage, with its client. */
export interface LoadedInteraction {
  record: ChallengeRecord;
  data: InteractionData;
  client: ClientRecord;
}

/** The parts of the login pages the upstream steps build on. */
export interface InteractionKit {
  /** The interaction in this stage, when the form carries its CSRF token. */
  load(id: string | undefined, form: Record<string, string | undefined>, stage: Stage): Promise<LoadedInteraction | undefined>;
  /** The interaction in this stage, without a CSRF check (the upstream callback checks `state` instead). */
  loadRecord(id: string | undefined, stage: Stage): Promise<LoadedInteraction | undefined>;
  page(id: string, client: ClientRecord, data: InteractionData, status?: number, error?: string): Outcome;
  /** First factor done: MFA when the user has it enrolled, then consent (third-party clients), then the code. */
  afterFirstFactor(id: string, userId: string, client: ClientRecord, data: InteractionData, ip: string | null): Promise<Outcome>;
  /** Counts one attempt from this IP against the per-IP limit; true when over it. */
  limited(ip: string | null): Promise<boolean>;
}

const MAX_MFA_ATTEMPTS = 5;

export interface Interactions {
  start(request: AuthorizationRequest, client: ClientRecord): Promise<{ id: string; outcome: Outcome }>;
  login(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome>;
  mfa(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome>;
  consent(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome>;
  /** "Sign in with …": redirects to the provider named by the form's `provider`. */
  upstream(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome>;
  /** The provider's redirect back (`/oauth2/upstream/<provider>/callback`), as the full URL it arrived at. */
  upstreamCallback(id: string | undefined, providerId: string, callbackUrl: URL, ip: string | null): Promise<Outcome>;
}

export function createInteractions(ctx: IssuerContext, limiter: RateLimiter): Interactions {
  const csrfKey = ctx.kek.derive('csrf');
  const csrfFor = (id: string) => createHmac('sha256', csrfKey).update(id).digest('base64url');

  async function load(id: string | undefined, form: Record<string, string | undefined>, stage: Stage) {
    if (!id || !form.csrf || !safeEqual(form.csrf, csrfFor(id))) return undefined;
    return loadRecord(id, stage);
  }

  async function loadRecord(id: string | undefined, stage: Stage): Promise<LoadedInteraction | undefined> {
    if (!id) return undefined;
    const record = await ctx.store.challenges.get(sha256(id));
    if (!record || record.kind !== 'interaction' || record.consumedAt !== null || record.expiresAt <= ctx.clock.now()) return undefined;
    const data = record.data as InteractionData;
    if (data.stage !== stage) return undefined;
    const client = await ctx.store.clients.byId(data.request.clientId);
    return client && { record, data, client };
  }

  const page = (id: string, client: ClientRecord, data: InteractionData, status = 200, error?: string): Outcome => ({
    kind: 'page',
    stage: data.stage,
    status,
    ...(error ? { error } : {}),
    client,
    request: data.request,
    csrf: csrfFor(id),
  });

  async function advance(id: string, userId: string, client: ClientRecord, data: InteractionData, ip: string | null): Promise<Outcome> {
    if (data.stage !== 'consent' && !client.firstParty) {
      const next = { ...data, stage: 'consent' as const };
      await ctx.store.challenges.update(sha256(id), userId, next);
      return page(id, client, next);
    }
    return finish(id, userId, client, data, ip);
  }

  async function finish(id: string, userId: string, client: ClientRecord, data: InteractionData, ip: string | null): Promise<Outcome> {
    const won = await ctx.store.challenges.consume(sha256(id), ctx.clock.now());
    if (won.status !== 'ok') return { kind: 'expired' };
    const code = randomToken();
    const r = data.request;
    await ctx.store.codes.save({
      codeHash: sha256(code),
      clientId: r.clientId,
      userId,
      redirectUri: r.redirectUri,
      scope: r.scope,
      codeChallenge: r.codeChallenge,
      nonce: r.nonce,
      resource: r.resource,
      amr: data.amr,
      authTime: data.authTime ?? Math.floor(ctx.clock.now() / 1000),
      expiresAt: ctx.clock.now() + ctx.settings.codeTtl * 1000,
      consumedAt: null,
      familyId: null,
      accessTokenJti: null,
    });
    await ctx.audit.record('authorization.code_issued', 'success', { userId, clientId: client.clientId, ip, details: { amr: data.amr } });
    return { kind: 'redirect', location: withParams(r.redirectUri, { code, state: r.state, iss: ctx.issuer() }) };
  }

  const limited = async (ip: string | null): Promise<boolean> => (await limiter.take(ip ?? 'unknown')) !== undefined;

  async function afterFirstFactor(id: string, userId: string, client: ClientRecord, data: InteractionData, ip: string | null): Promise<Outcome> {
    if ((await ctx.store.users.totp(userId)) === undefined) return advance(id, userId, client, data, ip);
    const next: InteractionData = { ...data, stage: 'mfa' };
    await ctx.store.challenges.update(sha256(id), userId, next);
    return page(id, client, next);
  }

  const upstream = createUpstreamSteps(ctx, { load, loadRecord, page, afterFirstFactor, limited });

  return {
    async start(request, client) {
      const id = randomToken();
      const data: InteractionData = { request, stage: 'login', amr: [], authTime: null, attempts: 0 };
      await ctx.store.challenges.save({ idHash: sha256(id), kind: 'interaction', userId: null, data, expiresAt: ctx.clock.now() + ctx.settings.interactionTtl * 1000, consumedAt: null });
      return { id, outcome: page(id, client, data) };
    },
    login: (id, form, ip) => inSpan('auth.login', { 'auth.client_type': 'browser', 'auth.step': 'password' }, () => loginStep(id, form, ip)),
    mfa: (id, form, ip) => inSpan('auth.login', { 'auth.client_type': 'browser', 'auth.step': 'mfa' }, () => mfaStep(id, form, ip)),
    consent: (id, form, ip) => consentStep(id, form, ip),
    upstream: (id, form, ip) => upstream.start(id, form, ip),
    upstreamCallback: (id, providerId, url, ip) => inSpan('auth.login', { 'auth.client_type': 'browser', 'auth.step': 'upstream' }, () => upstream.callback(id, providerId, url, ip)),
  };

  async function loginStep(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome> {
    const s = await load(id, form, 'login');
    if (!s) return { kind: 'expired' };
    if (await limited(ip)) return page(id!, s.client, s.data, 429, 'Too many attempts. Wait a minute and try again.');
    try {
      const first = await verifyPasswordLogin(ctx, { username: form.username ?? '', password: form.password ?? '', ip, clientType: 'browser' });
      try {
        const data: InteractionData = { ...s.data, amr: ['pwd'], authTime: first.authTime, stage: first.mfaRequired ? 'mfa' : s.data.stage };
        if (first.mfaRequired) {
          await ctx.store.challenges.update(sha256(id!), first.user.id, data);
          return page(id!, s.client, data);
        }
        return await advance(id!, first.user.id, s.client, data, ip);
      } finally {
        await first.audited;
      }
    } catch (err) {
      if (err instanceof OAuthError) return page(id!, s.client, s.data, 401, 'The username or password is incorrect.');
      throw err;
    }
  }

  async function mfaStep(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome> {
    const s = await load(id, form, 'mfa');
    if (!s || !s.record.userId) return { kind: 'expired' };
    if (await limited(ip)) return page(id!, s.client, s.data, 429, 'Too many attempts. Wait a minute and try again.');
    const user = await ctx.store.users.byId(s.record.userId);
    try {
      if (!user) throw new OAuthError('access_denied', 401, 'unknown user');
      const second = await verifySecondFactor(ctx, user, form.code ?? '', ip);
      // After a provider login the first factor was the provider's, not a password.
      const amr = s.data.amr.includes('fed') ? ['fed', ...second.filter((m) => m !== 'pwd')] : second;
      return advance(id!, user.id, s.client, { ...s.data, amr }, ip);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      const attempts = s.data.attempts + 1;
      if (attempts >= MAX_MFA_ATTEMPTS) {
        await ctx.store.challenges.consume(sha256(id!), ctx.clock.now());
        return { kind: 'redirect', location: errorRedirect(ctx, s.data.request.redirectUri, s.data.request.state, 'access_denied', 'too many failed attempts') };
      }
      const data = { ...s.data, attempts };
      await ctx.store.challenges.update(sha256(id!), s.record.userId, data);
      return page(id!, s.client, data, 401, 'The code is incorrect.');
    }
  }

  async function consentStep(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome> {
    const s = await load(id, form, 'consent');
    if (!s || !s.record.userId) return { kind: 'expired' };
    if (form.decision !== 'allow') {
      await ctx.store.challenges.consume(sha256(id!), ctx.clock.now());
      await ctx.audit.record('authorization.consent', 'failure', { userId: s.record.userId, clientId: s.client.clientId, ip, reason: 'consent_denied' });
      return { kind: 'redirect', location: errorRedirect(ctx, s.data.request.redirectUri, s.data.request.state, 'access_denied', 'the user denied the request') };
    }
    await ctx.audit.record('authorization.consent', 'success', { userId: s.record.userId, clientId: s.client.clientId, ip, details: { scope: s.data.request.scope } });
    return finish(id!, s.record.userId, s.client, s.data, ip);
  }
}
