import type { UserRecord } from '../store/index.js';
import type { IssuerContext } from './context.js';
import { MfaFailed } from './errors.js';
import { verifySecondFactor } from './login.js';
import { randomToken, sha256 } from './secrets.js';

/** Codes tried against one MFA token before it is spent. */
const MAX_ATTEMPTS = 5;

/** After a correct password of a user with MFA: a short-lived single-use `mfa_token`. */
export async function startMfaChallenge(ctx: IssuerContext, user: UserRecord, authTime: number, bound: Record<string, unknown> = {}): Promise<string> {
  const token = randomToken();
  await ctx.store.challenges.save({ idHash: sha256(token), kind: 'mfa', userId: user.id, data: { ...bound, authTime, attempts: 0 }, expiresAt: ctx.clock.now() + ctx.settings.mfaTokenTtl * 1000, consumedAt: null });
  return token;
}

/** Checks the code for an `mfa_token`; on success the token is consumed (compare-and-set). */
export async function completeMfaChallenge(ctx: IssuerContext, mfaToken: string, code: string, ip: string | null): Promise<{ user: UserRecord; amr: string[]; authTime: number; bound: Record<string, unknown> }> {
  const idHash = sha256(mfaToken);
  const challenge = await ctx.store.challenges.get(idHash);
  const now = ctx.clock.now();
  if (!challenge || challenge.kind !== 'mfa' || challenge.consumedAt !== null || challenge.expiresAt <= now || !challenge.userId) {
    ctx.metrics.loginFailures.inc({ method: 'totp', reason: 'mfa_token_invalid' });
    await ctx.audit.record('login.mfa', 'failure', { userId: challenge?.userId, ip, reason: 'mfa_token_invalid' });
    throw new MfaFailed('mfa_token_invalid');
  }
  const user = await ctx.store.users.byId(challenge.userId);
  if (!user) throw new MfaFailed('user_not_found');
  let amr: string[];
  try {
    amr = await verifySecondFactor(ctx, user, code, ip);
  } catch (err) {
    const attempts = Number(challenge.data.attempts ?? 0) + 1;
    if (attempts >= MAX_ATTEMPTS) await ctx.store.challenges.consume(idHash, now);
    else await ctx.store.challenges.update(idHash, challenge.userId, { ...challenge.data, attempts });
    throw err;
  }
  const won = await ctx.store.challenges.consume(idHash, now);
  if (won.status !== 'ok') throw new MfaFailed('mfa_token_invalid');
  return { user, amr, authTime: Number(challenge.data.authTime), bound: challenge.data };
}
