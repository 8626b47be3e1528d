import type { IssuerContext } from '../context.js';
import type { InteractionData, InteractionKit, Outcome } from '../interaction.js';
import { safeEqual, sha256 } from '../secrets.js';
import { storeUpstreamRefreshToken } from './broker.js';
import { finishUpstreamLogin, upstreamAuthorizationUrl, upstreamCallbackUrl, UpstreamLoginFailed, type UpstreamLoginResult } from './login.js';
import { mapExternalIdentity, UnmappedIdentity } from './mapping.js';
import type { UpstreamProvider } from './provider.js';

/** Shown for every failed provider login: the cause goes to metrics and the audit log only. */
export const UPSTREAM_FAILED_MESSAGE = 'Signing in through that provider did not succeed. Try again, or sign in another way.';
const UNAVAILABLE_MESSAGE = 'That sign-in provider cannot be reached right now. Try again later, or sign in another way.';

/**
 * "Sign in with …" on the login page: `start` keeps PKCE verifier, `state` and `nonce` in the
 * interaction and redirects to the provider; `callback` checks `state` against the interaction of
 * this browser (its cookie), consumes the pending attempt, finishes the login at the provider,
 * maps the account to a user and continues the interaction (MFA when enrolled, consent, code).
 */
export function createUpstreamSteps(ctx: IssuerContext, kit: InteractionKit) {
  const withoutPending = (data: InteractionData): InteractionData => ({ ...data, upstream: undefined });

  async function start(id: string | undefined, form: Record<string, string | undefined>, ip: string | null): Promise<Outcome> {
    const s = await kit.load(id, form, 'login');
    if (!s) return { kind: 'expired' };
    const provider = form.provider ? ctx.upstream.get(form.provider) : undefined;
    if (!provider) return kit.page(id!, s.client, s.data, 400, UPSTREAM_FAILED_MESSAGE);
    if (await kit.limited(ip)) return kit.page(id!, s.client, s.data, 429, 'Too many attempts. Wait a minute and try again.');
    try {
      const { url, pending } = await upstreamAuthorizationUrl(provider, upstreamCallbackUrl(ctx.issuer(), provider.id));
      await ctx.store.challenges.update(sha256(id!), null, { ...s.data, upstream: pending });
      return { kind: 'upstream', location: url };
    } catch (err) {
      if (!(err instanceof UpstreamLoginFailed)) throw err;
      await failed(provider, err.reason, null, ip);
      return kit.page(id!, s.client, s.data, 503, UNAVAILABLE_MESSAGE);
    }
  }

  async function callback(id: string | undefined, providerId: string, callbackUrl: URL, ip: string | null): Promise<Outcome> {
    const s = await kit.loadRecord(id, 'login');
    const pending = s?.data.upstream;
    const state = callbackUrl.searchParams.get('state');
    // No interaction in this browser, another provider, or a forged or replayed `state`.
    if (!s || !pending || pending.provider !== providerId || !state || !safeEqual(state, pending.state)) return { kind: 'expired' };
    const provider = ctx.upstream.get(providerId);
    if (!provider) return { kind: 'expired' };
    const data = withoutPending(s.data);
    // The attempt is spent before the code is redeemed: a second callback with the same `state` finds nothing.
    await ctx.store.challenges.update(sha256(id!), null, data);
    ctx.metrics.loginAttempts.inc({ method: 'upstream', client_type: 'browser' });
    const end = ctx.metrics.loginLatency.startTimer({ method: 'upstream' });
    try {
      const result = await finishUpstreamLogin(provider, pending, callbackUrl);
      const { user } = await mapExternalIdentity(ctx, provider, result.identity, ip);
      if (user.disabled) {
        await failed(provider, 'account_disabled', user.id, ip);
        return kit.page(id!, s.client, data, 403, UPSTREAM_FAILED_MESSAGE);
      }
      await keepTokens(provider, result);
      await ctx.audit.record('login.upstream', 'success', { userId: user.id, clientId: s.client.clientId, ip, details: { provider: provider.id } });
      const next: InteractionData = { ...data, amr: ['fed'], authTime: Math.floor(ctx.clock.now() / 1000) };
      return await kit.afterFirstFactor(id!, user.id, s.client, next, ip);
    } catch (err) {
      const reason = err instanceof UpstreamLoginFailed || err instanceof UnmappedIdentity ? err.reason : undefined;
      if (!reason) throw err;
      if (err instanceof UpstreamLoginFailed) ctx.logger.info({ provider: provider.id, reason, err: (err.cause as Error | undefined)?.message }, 'upstream login failed');
      await failed(provider, reason, null, ip);
      return kit.page(id!, s.client, data, reason === 'unmapped_external_identity' ? 403 : 401, UPSTREAM_FAILED_MESSAGE);
    } finally {
      end();
    }
  }

  async function keepTokens(provider: UpstreamProvider, result: UpstreamLoginResult): Promise<void> {
    if (!provider.settings.store_tokens) return;
    if (result.refreshToken) await storeUpstreamRefreshToken(ctx, provider, result.identity.subject, result.refreshToken, result.refreshExpiresIn);
    else ctx.logger.warn({ provider: provider.id }, 'store_tokens is set but the provider returned no refresh token (request offline_access, or what the provider needs)');
  }

  async function failed(provider: UpstreamProvider, reason: string, userId: string | null, ip: string | null): Promise<void> {
    ctx.metrics.loginFailures.inc({ method: 'upstream', reason });
    await ctx.audit.record('login.upstream', 'failure', { userId, ip, reason, details: { provider: provider.id } });
  }

  return { start, callback };
}
