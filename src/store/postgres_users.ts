import type { PgDb } from './postgres_db.js';
import { json } from './json_column.js';
import type { AttemptReservation, UserRecord, UserStore } from './store.js';

interface UserRow {
  id: string;
  username: string;
  name: string | null;
  email: string | null;
  roles: string;
  disabled: boolean;
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
  disabled: r.disabled,
  createdAt: r.created_at,
  failedLogins: r.failed_logins,
  lockedUntil: r.locked_until,
});

const first = <T>(rows: T[]): T | undefined => rows[0];

export function createPgUserStore(db: PgDb): UserStore {
  const user = async (sql: string, key: string) => {
    const r = first(await db.read<UserRow>(sql, [key]));
    return r && toUser(r);
  };
  const changed = async (sql: string, params: unknown[]) => (await db.write(sql, params)).rowCount === 1;
  return {
    create: (u) =>
      db.tx(async (q) => {
        await q('INSERT INTO users (id, username, name, email, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [u.id, u.username, u.name ?? null, u.email ?? null, json.write(u.roles), u.createdAt]);
        if (u.passwordHash !== null) await q('INSERT INTO password_credentials (user_id, hash, updated_at) VALUES ($1, $2, $3)', [u.id, u.passwordHash, u.createdAt]);
      }),
    byId: (id) => user('SELECT * FROM users WHERE id = $1', id),
    byUsername: (name) => user('SELECT * FROM users WHERE username = $1', name),
    byEmail: async (email) => (await db.read<UserRow>('SELECT * FROM users WHERE lower(email) = lower($1) ORDER BY created_at, id', [email])).map(toUser),
    list: async () => (await db.read<UserRow>('SELECT * FROM users ORDER BY username')).map(toUser),
    setDisabled: (id, disabled) => changed('UPDATE users SET disabled = $1 WHERE id = $2', [disabled, id]),
    setRoles: (id, roles) => changed('UPDATE users SET roles = $1 WHERE id = $2', [json.write(roles), id]),
    passwordHash: async (id) => first(await db.read<{ hash: string }>('SELECT hash FROM password_credentials WHERE user_id = $1', [id]))?.hash,
    // Adds the hash for a user created without a password (provisioned from an identity provider).
    setPasswordHash: (id, hash) =>
      changed(
        'INSERT INTO password_credentials (user_id, hash, updated_at) SELECT id, $1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM users WHERE id = $2 ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at',
        [hash, id],
      ),
    // The row lock serialises parallel attempts on one account, so none can outrun the lockout.
    reserveAttempt: (id, now, lockFor) =>
      db.tx(async (q): Promise<AttemptReservation> => {
        const row = first((await q<{ failed_logins: number; locked_until: number | null }>('SELECT failed_logins, locked_until FROM users WHERE id = $1 FOR UPDATE', [id])).rows);
        if (!row) return { allowed: false, failures: 0, lockedUntil: null, previousLockedUntil: null };
        const previousLockedUntil = row.locked_until;
        if (previousLockedUntil !== null && previousLockedUntil > now) return { allowed: false, failures: row.failed_logins, lockedUntil: previousLockedUntil, previousLockedUntil };
        const failures = row.failed_logins + 1;
        const lockedUntil = lockFor(failures);
        await q('UPDATE users SET failed_logins = $1, locked_until = COALESCE($2::bigint, locked_until) WHERE id = $3', [failures, lockedUntil, id]);
        return { allowed: true, failures, lockedUntil: lockedUntil ?? previousLockedUntil, previousLockedUntil };
      }),
    releaseAttempt: async (id, r) =>
      void (await db.write('UPDATE users SET failed_logins = GREATEST(failed_logins - 1, 0), locked_until = CASE WHEN locked_until IS NOT DISTINCT FROM $1::bigint THEN $2::bigint ELSE locked_until END WHERE id = $3', [
        r.lockedUntil,
        r.previousLockedUntil,
        id,
      ])),
    resetFailures: async (id) => void (await db.write('UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1', [id])),
    totp: async (id) => {
      const r = first(await db.read<{ user_id: string; secret_ciphertext: string; created_at: number; last_step: number | null }>('SELECT * FROM totp_enrolments WHERE user_id = $1', [id]));
      return r && { userId: r.user_id, secretCiphertext: r.secret_ciphertext, createdAt: r.created_at, lastStep: r.last_step };
    },
    setTotp: (e, codes) =>
      db.tx(async (q) => {
        await q(
          'INSERT INTO totp_enrolments (user_id, secret_ciphertext, created_at, last_step) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET secret_ciphertext = EXCLUDED.secret_ciphertext, created_at = EXCLUDED.created_at, last_step = EXCLUDED.last_step',
          [e.userId, e.secretCiphertext, e.createdAt, e.lastStep],
        );
        await q('DELETE FROM backup_codes WHERE user_id = $1', [e.userId]);
        if (codes.length) await q('INSERT INTO backup_codes (user_id, code_hash) SELECT $1, unnest($2::text[])', [e.userId, codes]);
      }),
    resetMfa: async (id) => {
      const sql = 'WITH t AS (DELETE FROM totp_enrolments WHERE user_id = $1 RETURNING 1), b AS (DELETE FROM backup_codes WHERE user_id = $1 RETURNING 1) SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM b) AS n';
      return first((await db.write<{ n: number }>(sql, [id])).rows)!.n > 0;
    },
    advanceTotpStep: (id, step) => changed('UPDATE totp_enrolments SET last_step = $1 WHERE user_id = $2 AND (last_step IS NULL OR last_step < $1)', [step, id]),
    consumeBackupCode: (id, hash, at) => changed('UPDATE backup_codes SET consumed_at = $1 WHERE user_id = $2 AND code_hash = $3 AND consumed_at IS NULL', [at, id, hash]),
  };
}
