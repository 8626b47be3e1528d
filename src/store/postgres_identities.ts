import type { PgDb } from './postgres_db.js';
import { json } from './json_column.js';
import type { ExternalIdentityRecord, ExternalIdentityStore } from './store.js';

interface IdentityRow {
  provider: string;
  subject: string;
  user_id: string;
  email: string | null;
  created_at: number;
  needs_reconsent: boolean;
  refresh_token_ciphertext: string | null;
  refresh_token_expires_at: number | null;
  token_updated_at: number | null;
}

const toIdentity = (r: IdentityRow): ExternalIdentityRecord => ({
  provider: r.provider,
  subject: r.subject,
  userId: r.user_id,
  email: r.email,
  createdAt: r.created_at,
  needsReconsent: r.needs_reconsent,
  refreshTokenCiphertext: r.refresh_token_ciphertext,
  refreshTokenExpiresAt: r.refresh_token_expires_at,
  tokenUpdatedAt: r.token_updated_at,
});

const INSERT = 'INSERT INTO external_identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING';

/** External identity links; a taken `(provider, subject)` or `(provider, user_id)` makes `link`/`provision` report false. */
export function createPgIdentityStore(db: PgDb): ExternalIdentityStore {
  const changed = async (sql: string, params: unknown[]) => (await db.write(sql, params)).rowCount === 1;
  return {
    find: async (provider, subject) => {
      const r = (await db.read<IdentityRow>('SELECT * FROM external_identities WHERE provider = $1 AND subject = $2', [provider, subject]))[0];
      return r && toIdentity(r);
    },
    forUser: async (userId) => (await db.read<IdentityRow>('SELECT * FROM external_identities WHERE user_id = $1 ORDER BY provider', [userId])).map(toIdentity),
    link: (i) => changed(INSERT, [i.provider, i.subject, i.userId, i.email, i.createdAt]),
    // The user row exists only if the link could be made: a taken identity rolls both back.
    provision: (user, i) =>
      db
        .tx(async (q) => {
          await q('INSERT INTO users (id, username, name, email, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [user.id, user.username, user.name ?? null, user.email ?? null, json.write(user.roles), user.createdAt]);
          if (user.passwordHash !== null) await q('INSERT INTO password_credentials (user_id, hash, updated_at) VALUES ($1, $2, $3)', [user.id, user.passwordHash, user.createdAt]);
          if ((await q(INSERT, [i.provider, i.subject, user.id, i.email, i.createdAt])).rowCount !== 1) throw new IdentityTaken();
          return true;
        })
        .catch((err: unknown) => {
          // The transaction wraps what its body throws as the cause of a store error.
          if (err instanceof IdentityTaken || (err as { cause?: unknown }).cause instanceof IdentityTaken) return false;
          throw err;
        }),
    setRefreshToken: (provider, subject, t) =>
      changed('UPDATE external_identities SET refresh_token_ciphertext = $1, refresh_token_expires_at = $2, token_updated_at = $3, needs_reconsent = false WHERE provider = $4 AND subject = $5', [t.ciphertext, t.expiresAt, t.at, provider, subject]),
    markNeedsReconsent: (provider, subject) =>
      changed('UPDATE external_identities SET needs_reconsent = true, refresh_token_ciphertext = NULL, refresh_token_expires_at = NULL WHERE provider = $1 AND subject = $2', [provider, subject]),
  };
}

/** Rolls the provisioning transaction back when the identity was linked meanwhile. */
class IdentityTaken extends Error {}
