import type { Db } from './sqlite.js';
import { json } from './json_column.js';
import type { AttemptReservation, NewUser, TotpEnrolment, UserRecord, UserStore } from './store.js';

interface UserRow {
  id: string;
  username: string;
  name: string | null;
  email: string | null;
  roles: string;
  disabled: number;
  created_at: number;
  failed_logins: number;
  locked_until: number | null;
}

const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  name: r.name,
  email: r.email,
  roles: json.read<string[]>(r.roles),
  disabled: r.disabled === 1,
  createdAt: r.created_at,
  failedLogins: r.failed_logins,
  lockedUntil: r.locked_until,
});

export function createSqliteUserStore(db: Db): UserStore {
  const create = createUserTransaction(db);
  const s = {
    byId: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
    byUsername: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
    byEmail: db.prepare<[string], UserRow>('SELECT * FROM users WHERE lower(email) = lower(?) ORDER BY created_at, id'),
    list: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY username'),
    setDisabled: db.prepare('UPDATE users SET disabled = ? WHERE id = ?'),
    setRoles: db.prepare('UPDATE users SET roles = ? WHERE id = ?'),
    password: db.prepare<[string], { hash: string }>('SELECT hash FROM password_credentials WHERE user_id = ?'),
    setPassword: db.prepare(
      "INSERT INTO password_credentials (user_id, hash, updated_at) SELECT id, ?, CAST(unixepoch('subsec') * 1000 AS INTEGER) FROM users WHERE id = ? ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
    ),
    attempts: db.prepare<[string], { failed_logins: number; locked_until: number | null }>('SELECT failed_logins, locked_until FROM users WHERE id = ?'),
    count: db.prepare('UPDATE users SET failed_logins = ?, locked_until = COALESCE(?, locked_until) WHERE id = ?'),
    release: db.prepare('UPDATE users SET failed_logins = MAX(failed_logins - 1, 0), locked_until = CASE WHEN locked_until IS ? THEN ? ELSE locked_until END WHERE id = ?'),
    reset: db.prepare('UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?'),
    totp: db.prepare<[string], { user_id: string; secret_ciphertext: string; created_at: number; last_step: number | null }>('SELECT * FROM totp_enrolments WHERE user_id = ?'),
    putTotp: db.prepare('INSERT OR REPLACE INTO totp_enrolments (user_id, secret_ciphertext, created_at, last_step) VALUES (?, ?, ?, ?)'),
    deleteTotp: db.prepare('DELETE FROM totp_enrolments WHERE user_id = ?'),
    deleteBackup: db.prepare('DELETE FROM backup_codes WHERE user_id = ?'),
    insertBackup: db.prepare('INSERT INTO backup_codes (user_id, code_hash) VALUES (?, ?)'),
    advance: db.prepare('UPDATE totp_enrolments SET last_step = ? WHERE user_id = ? AND (last_step IS NULL OR last_step < ?)'),
    consumeBackup: db.prepare('UPDATE backup_codes SET consumed_at = ? WHERE user_id = ? AND code_hash = ? AND consumed_at IS NULL'),
  };
  const setTotp = db.transaction((e: TotpEnrolment, codes: string[]) => {
    s.putTotp.run(e.userId, e.secretCiphertext, e.createdAt, e.lastStep);
    s.deleteBackup.run(e.userId);
    for (const c of codes) s.insertBackup.run(e.userId, c);
  });
  const resetMfa = db.transaction((id: string) => s.deleteTotp.run(id).changes + s.deleteBackup.run(id).changes > 0);
  const reserve = db.transaction((id: string, now: number, lockFor: (n: number) => number | null): AttemptReservation => {
    const row = s.attempts.get(id);
    if (!row) return { allowed: false, failures: 0, lockedUntil: null, previousLockedUntil: null };
    const previousLockedUntil = row.locked_until;
    if (previousLockedUntil !== null && previousLockedUntil > now) return { allowed: false, failures: row.failed_logins, lockedUntil: previousLockedUntil, previousLockedUntil };
    const failures = row.failed_logins + 1;
    const lockedUntil = lockFor(failures);
    s.count.run(failures, lockedUntil, id);
    return { allowed: true, failures, lockedUntil: lockedUntil ?? previousLockedUntil, previousLockedUntil };
  });
  return {
    create: async (u) => void create(u),
    byId: async (id) => mapOpt(s.byId.get(id)),
    byUsername: async (name) => mapOpt(s.byUsername.get(name)),
    byEmail: async (email) => s.byEmail.all(email).map(toUser),
    list: async () => s.list.all().map(toUser),
    setDisabled: async (id, disabled) => s.setDisabled.run(disabled ? 1 : 0, id).changes === 1,
    setRoles: async (id, roles) => s.setRoles.run(json.write(roles), id).changes === 1,
    passwordHash: async (id) => s.password.get(id)?.hash,
    setPasswordHash: async (id, hash) => s.setPassword.run(hash, id).changes === 1,
    reserveAttempt: async (id, now, lockFor) => reserve(id, now, lockFor),
    releaseAttempt: async (id, r) => void s.release.run(r.lockedUntil, r.previousLockedUntil, id),
    resetFailures: async (id) => void s.reset.run(id),
    totp: async (id) => {
      const r = s.totp.get(id);
      return r && { userId: r.user_id, secretCiphertext: r.secret_ciphertext, createdAt: r.created_at, lastStep: r.last_step };
    },
    setTotp: async (e, codes) => void setTotp(e, codes),
    resetMfa: async (id) => resetMfa(id),
    advanceTotpStep: async (id, step) => s.advance.run(step, id, step).changes === 1,
    consumeBackupCode: async (id, hash, at) => s.consumeBackup.run(at, id, hash).changes === 1,
  };
}

/** Inserts a user and its password (none for a user without one) in one transaction; nests inside another one. */
export function createUserTransaction(db: Db): (user: NewUser) => void {
  const insertUser = db.prepare('INSERT INTO users (id, username, name, email, roles, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const insertPassword = db.prepare('INSERT INTO password_credentials (user_id, hash, updated_at) VALUES (?, ?, ?)');
  return db.transaction((u: NewUser) => {
    insertUser.run(u.id, u.username, u.name ?? null, u.email ?? null, json.write(u.roles), u.createdAt);
    if (u.passwordHash !== null) insertPassword.run(u.id, u.passwordHash, u.createdAt);
  });
}

function mapOpt(row: UserRow | undefined): UserRecord | undefined {
  return row && toUser(row);
}
