import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../lib/errors.js';
import type { UserRecord } from '../store/index.js';
import type { IssuerContext } from './context.js';
import { hashPassword, passwordProblem } from './passwords.js';
import { keyedHash } from './secrets.js';
import { newBackupCodes, newTotpSecret, normalizeBackupCode, totpUri } from './totp.js';

/** Account administration (the `portcullis users` commands); every change is audited. */
export interface NewUserInput {
  username: string;
  password: string;
  roles: string[];
  name?: string | undefined;
  email?: string | undefined;
}

const USERNAME = /^[A-Za-z0-9._@+-]{1,128}$/;

export async function addUser(ctx: IssuerContext, u: NewUserInput): Promise<UserRecord> {
  if (!USERNAME.test(u.username)) throw new PortcullisError('ERR_BAD_REQUEST', 'username must be 1-128 characters of letters, digits and . _ @ + -');
  const problem = passwordProblem(u.password);
  if (problem) throw new PortcullisError('ERR_BAD_REQUEST', `password ${problem}`);
  if (await ctx.store.users.byUsername(u.username)) throw new PortcullisError('ERR_BAD_REQUEST', `user ${u.username} already exists`);
  const id = randomUUID();
  await ctx.store.users.create({ id, username: u.username, name: u.name ?? null, email: u.email ?? null, roles: u.roles, passwordHash: await hashPassword(u.password), createdAt: ctx.clock.now() });
  await ctx.audit.record('admin.user_added', 'success', { userId: id, details: { roles: u.roles } });
  return (await ctx.store.users.byId(id))!;
}

export async function userByName(ctx: IssuerContext, username: string): Promise<UserRecord> {
  const user = await ctx.store.users.byUsername(username);
  if (!user) throw new PortcullisError('ERR_BAD_REQUEST', `no user ${username}`);
  return user;
}

export async function setPassword(ctx: IssuerContext, username: string, password: string): Promise<void> {
  const user = await userByName(ctx, username);
  const problem = passwordProblem(password);
  if (problem) throw new PortcullisError('ERR_BAD_REQUEST', `password ${problem}`);
  await ctx.store.users.setPasswordHash(user.id, await hashPassword(password));
  await ctx.store.users.resetFailures(user.id);
  // A reset password usually means a suspected compromise: sessions of the old one end.
  const revoked = await ctx.store.refresh.revokeUser(user.id, ctx.clock.now(), 'password_changed');
  await ctx.audit.record('admin.password_set', 'success', { userId: user.id, details: { refresh_families_revoked: revoked } });
}

export async function setDisabled(ctx: IssuerContext, username: string, disabled: boolean): Promise<void> {
  const user = await userByName(ctx, username);
  await ctx.store.users.setDisabled(user.id, disabled);
  // Disabling ends the sessions for good: enabling again does not bring them back.
  const revoked = disabled ? await ctx.store.refresh.revokeUser(user.id, ctx.clock.now(), 'user_disabled') : 0;
  await ctx.audit.record(disabled ? 'admin.user_disabled' : 'admin.user_enabled', 'success', { userId: user.id, details: { refresh_families_revoked: revoked } });
}

/** Backup codes carry ~40 bits: stored as an HMAC under a key derived from the KEK, so a copied database cannot brute-force them. */
export function backupCodeHash(ctx: IssuerContext, code: string): string {
  return keyedHash(ctx.kek.derive('backup-code'), normalizeBackupCode(code));
}

export interface TotpEnrolmentResult {
  uri: string;
  secret: string;
  backupCodes: string[];
}

/** Enrols (or re-enrols) TOTP: a new secret, encrypted at rest, and ten fresh backup codes. */
export async function enrollTotp(ctx: IssuerContext, username: string, issuerLabel: string): Promise<TotpEnrolmentResult> {
  const user = await userByName(ctx, username);
  const secret = newTotpSecret();
  const backupCodes = newBackupCodes();
  await ctx.store.users.setTotp({ userId: user.id, secretCiphertext: ctx.kek.encrypt(secret, 'totp'), createdAt: ctx.clock.now(), lastStep: null }, backupCodes.map((c) => backupCodeHash(ctx, c)));
  await ctx.audit.record('admin.mfa_enrolled', 'success', { userId: user.id, details: { method: 'totp' } });
  return { uri: totpUri(secret, issuerLabel, user.username), secret, backupCodes };
}

export async function resetMfa(ctx: IssuerContext, username: string): Promise<boolean> {
  const user = await userByName(ctx, username);
  const removed = await ctx.store.users.resetMfa(user.id);
  const revoked = await ctx.store.refresh.revokeUser(user.id, ctx.clock.now(), 'mfa_reset');
  await ctx.audit.record('admin.mfa_reset', 'success', { userId: user.id, details: { refresh_families_revoked: revoked } });
  return removed;
}
