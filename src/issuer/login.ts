import type { AttemptReservation, UserRecord } from '../store/index.js';
import type { IssuerContext } from './context.js';
import { InvalidCredentials, MfaFailed } from './errors.js';
import { verifyPassword as verifyArgon2 } from './passwords.js';
import { inSpan } from '../telemetry/tracing.js';
import { matchTotp } from './totp.js';
import { backupCodeHash } from './users.js';

export type ClientType = 'api' | 'browser';

export interface PasswordAttempt {
  username: string;
  password: string;
  ip: string | null;
  clientType: ClientType;
}

/**
 * After the password: done, or a second factor is still owed. `audited` settles when the success
 * audit row is committed: the caller awaits it before answering, after recording its own events,
 * so a login's rows share one group commit (audit.record never rejects).
 */
export type FirstFactor = { user: UserRecord; mfaRequired: boolean; authTime: number; audited: Promise<void> };

/**
 * Verifies a username and password. Unknown user, wrong password, locked and disabled accounts
 * all throw the same InvalidCredentials after the same argon2id work; the reason goes to metrics
 * and the audit log only. Consecutive failures lock the account with exponential back-off.
 */
export function verifyPasswordLogin(ctx: IssuerContext, a: PasswordAttempt): Promise<FirstFactor> {
  return inSpan('auth.verify_credentials', { 'auth.method': 'password', 'auth.client_type': a.clientType }, () => passwordStep(ctx, a));
}

const verifyPassword = (hash: string, password: string) => inSpan('auth.verify_password', { 'auth.password.algorithm': 'argon2id' }, () => verifyArgon2(hash, password));

async function passwordStep(ctx: IssuerContext, a: PasswordAttempt): Promise<FirstFactor> {
  ctx.metrics.loginAttempts.inc({ method: 'password', client_type: a.clientType });
  const end = ctx.metrics.loginLatency.startTimer({ method: 'password' });
  try {
    const now = ctx.clock.now();
    const user = await ctx.store.users.byUsername(a.username);
    if (!user) {
      await verifyPassword(ctx.dummyHash, a.password);
      return await fail(ctx, 'password', 'user_not_found', null, a.ip);
    }
    const attempt = await reserveAttempt(ctx, user.id);
    if (!attempt.allowed) {
      await verifyPassword(ctx.dummyHash, a.password);
      return await fail(ctx, 'password', 'account_locked', user.id, a.ip);
    }
    const hash = await ctx.store.users.passwordHash(user.id);
    const ok = await verifyPassword(hash ?? ctx.dummyHash, a.password);
    if (!ok || !hash) {
      await lockedIfSo(ctx, user.id, attempt);
      return await fail(ctx, 'password', 'invalid_password', user.id, a.ip);
    }
    if (user.disabled) return await fail(ctx, 'password', 'account_disabled', user.id, a.ip);
    const mfaRequired = (await ctx.store.users.totp(user.id)) !== undefined;
    // The password was right: its reserved attempt no longer counts. With MFA still owed, only
    // this attempt is given back; earlier failures stay until the second factor succeeds.
    if (mfaRequired) await ctx.store.users.releaseAttempt(user.id, attempt);
    else await ctx.store.users.resetFailures(user.id);
    const audited = ctx.audit.record('login.password', 'success', { userId: user.id, ip: a.ip, details: { mfa_required: mfaRequired, client_type: a.clientType } });
    return { user, mfaRequired, authTime: Math.floor(now / 1000), audited };
  } finally {
    end();
  }
}

/**
 * Verifies a TOTP code (RFC 6238, ±1 step, each step accepted once) or a one-time backup code.
 * Failures count towards the account lockout like wrong passwords.
 */
export function verifySecondFactor(ctx: IssuerContext, user: UserRecord, code: string, ip: string | null): Promise<string[]> {
  const trimmed = code.replace(/\s+/g, '');
  const method = /^\d{6}$/.test(trimmed) ? 'totp' : 'backup_code';
  return inSpan('auth.mfa.verify', { 'auth.mfa.method': method, 'enduser.pseudo_id': ctx.audit.userRef(user.id) }, () => secondFactorStep(ctx, user, trimmed, method, ip));
}

async function secondFactorStep(ctx: IssuerContext, user: UserRecord, trimmed: string, method: 'totp' | 'backup_code', ip: string | null): Promise<string[]> {
  ctx.metrics.mfaAttempts.inc({ method });
  const end = ctx.metrics.loginLatency.startTimer({ method });
  try {
    const now = ctx.clock.now();
    const fresh = await ctx.store.users.byId(user.id);
    if (!fresh || fresh.disabled) return await failMfa(ctx, method, fresh ? 'account_disabled' : 'user_not_found', user.id, ip);
    const attempt = await reserveAttempt(ctx, user.id);
    if (!attempt.allowed) return await failMfa(ctx, method, 'account_locked', user.id, ip);
    let ok = false;
    if (method === 'totp') {
      const enrolment = await ctx.store.users.totp(user.id);
      const secret = enrolment && ctx.kek.decrypt(enrolment.secretCiphertext, 'totp');
      const step = secret ? await matchTotp(secret, trimmed, now) : undefined;
      if (step !== undefined && !(await ctx.store.users.advanceTotpStep(user.id, step))) {
        await lockedIfSo(ctx, user.id, attempt);
        return await failMfa(ctx, method, 'totp_replayed', user.id, ip);
      }
      ok = step !== undefined;
    } else {
      ok = await ctx.store.users.consumeBackupCode(user.id, backupCodeHash(ctx, trimmed), now);
    }
    if (!ok) {
      await lockedIfSo(ctx, user.id, attempt);
      return await failMfa(ctx, method, 'mfa_failed', user.id, ip);
    }
    await ctx.store.users.resetFailures(user.id);
    await ctx.audit.record('login.mfa', 'success', { userId: user.id, ip, details: { method } });
    return method === 'totp' ? ['pwd', 'otp', 'mfa'] : ['pwd', 'mfa'];
  } finally {
    end();
  }
}

/** Counts the attempt before the slow check (see Store.reserveAttempt); the lock doubles with each failure past the limit. */
function reserveAttempt(ctx: IssuerContext, userId: string): Promise<AttemptReservation> {
  const { maxFailures, baseSeconds, maxSeconds } = ctx.settings.lockout;
  const now = ctx.clock.now();
  return ctx.store.users.reserveAttempt(userId, now, (n) => (n >= maxFailures ? now + Math.min(baseSeconds * 2 ** (n - maxFailures), maxSeconds) * 1000 : null));
}

/** A failed attempt that set a lock: every lock (the first and each longer one after it) is counted and audited. */
async function lockedIfSo(ctx: IssuerContext, userId: string, attempt: AttemptReservation): Promise<void> {
  if (attempt.lockedUntil === null || attempt.lockedUntil === attempt.previousLockedUntil) return;
  ctx.metrics.loginLockouts.inc();
  await ctx.audit.record('account.locked', 'failure', { userId, reason: 'too_many_failures', details: { failures: attempt.failures, locked_seconds: Math.round((attempt.lockedUntil - ctx.clock.now()) / 1000) } });
}

async function fail(ctx: IssuerContext, method: string, reason: string, userId: string | null, ip: string | null): Promise<never> {
  ctx.metrics.loginFailures.inc({ method, reason });
  await ctx.audit.record('login.password', 'failure', { userId, ip, reason });
  throw new InvalidCredentials(reason);
}

async function failMfa(ctx: IssuerContext, method: string, reason: string, userId: string, ip: string | null): Promise<never> {
  ctx.metrics.loginFailures.inc({ method, reason });
  await ctx.audit.record('login.mfa', 'failure', { userId, ip, reason, details: { method } });
  throw new MfaFailed(reason);
}
