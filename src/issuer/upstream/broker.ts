import * as oidc from 'openid-client';
import type { IssuerContext } from '../context.js';
import type { UpstreamProvider } from './provider.js';

/** The KEK purpose of stored upstream refresh tokens (a ciphertext of another purpose never decrypts as one). */
const PURPOSE = 'upstream-refresh-token';

/** Keeps a provider refresh token for a linked account, encrypted; clears a pending re-consent. */
export async function storeUpstreamRefreshToken(ctx: IssuerContext, provider: UpstreamProvider, subject: string, token: string, expiresIn: number | undefined): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.identities.setRefreshToken(provider.id, subject, { ciphertext: ctx.kek.encrypt(token, PURPOSE), expiresAt: expiresIn === undefined ? null : now + expiresIn * 1000, at: now });
}

/** A fresh upstream access token, as the provider issued it. */
export interface BrokeredToken {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
}

export type BrokerResult =
  | { ok: true; token: BrokeredToken }
  /** `not_linked`: no link or no stored token; `reconsent_required`: the provider refused the grant; `upstream_unavailable`: it could not be reached. */
  | { ok: false; error: 'not_linked' | 'reconsent_required' | 'upstream_unavailable' };

/** Refreshes in progress, per provider and user. */
const inFlight = new WeakMap<UpstreamProvider, Map<string, Promise<BrokerResult>>>();

/**
 * Refreshes a user's stored upstream grant on demand and returns the new access token; a rotated
 * refresh token replaces the stored one. The provider refusing the grant (revoked, expired)
 * marks the link as needing re-consent (the user signs in through the provider again); a network
 * failure does not, as the grant may still be good. Concurrent calls for one link share one
 * refresh, so a rotating provider never sees its refresh token twice from this process.
 */
export function brokeredUpstreamToken(ctx: IssuerContext, provider: UpstreamProvider, userId: string): Promise<BrokerResult> {
  let running = inFlight.get(provider);
  if (!running) inFlight.set(provider, (running = new Map()));
  let pending = running.get(userId);
  if (!pending) {
    pending = refresh(ctx, provider, userId).finally(() => running.delete(userId));
    running.set(userId, pending);
  }
  return pending;
}

async function refresh(ctx: IssuerContext, provider: UpstreamProvider, userId: string): Promise<BrokerResult> {
  const link = (await ctx.store.identities.forUser(userId)).find((l) => l.provider === provider.id);
  if (!link) return { ok: false, error: 'not_linked' };
  if (link.needsReconsent) return { ok: false, error: 'reconsent_required' };
  if (!link.refreshTokenCiphertext) return { ok: false, error: 'not_linked' };
  const count = (outcome: 'success' | 'failed') => ctx.metrics.upstreamTokenRefresh.inc({ provider: provider.id, outcome });
  const fail = async (reason: string, error: 'reconsent_required' | 'upstream_unavailable'): Promise<BrokerResult> => {
    count('failed');
    if (error === 'reconsent_required') await ctx.store.identities.markNeedsReconsent(provider.id, link.subject);
    await ctx.audit.record('upstream.token_refresh', 'failure', { userId, reason, details: { provider: provider.id, needs_reconsent: error === 'reconsent_required' } });
    return { ok: false, error };
  };
  let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
  try {
    tokens = await oidc.refreshTokenGrant(await provider.client(), ctx.kek.decrypt(link.refreshTokenCiphertext, PURPOSE));
  } catch (err) {
    // An OAuth error answer (invalid_grant, unauthorized_client, ...) means the grant is gone.
    if (err instanceof oidc.ResponseBodyError) return fail(/^[a-z_]{1,40}$/.test(err.error) ? `upstream_${err.error}` : 'upstream_refused', 'reconsent_required');
    ctx.logger.warn({ provider: provider.id, err: (err as Error).message }, 'upstream token refresh failed');
    return fail('upstream_unreachable', 'upstream_unavailable');
  }
  if (tokens.refresh_token) await storeUpstreamRefreshToken(ctx, provider, link.subject, tokens.refresh_token, typeof tokens.refresh_expires_in === 'number' ? tokens.refresh_expires_in : undefined);
  count('success');
  await ctx.audit.record('upstream.token_refresh', 'success', { userId, details: { provider: provider.id, rotated: tokens.refresh_token !== undefined } });
  return {
    ok: true,
    token: { access_token: tokens.access_token, token_type: tokens.token_type === 'bearer' ? 'Bearer' : tokens.token_type, ...(tokens.expires_in !== undefined ? { expires_in: tokens.expires_in } : {}), ...(tokens.scope ? { scope: tokens.scope } : {}) },
  };
}
