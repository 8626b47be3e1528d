import type { Db } from './sqlite.js';
import { createUserTransaction } from './sqlite_users.js';
import type { ExternalIdentityRecord, ExternalIdentityStore, NewExternalIdentity, NewUser } from './store.js';

interface IdentityRow {
  provider: string;
  subject: string;
  user_id: string;
  email: string | null;
  created_at: number;
  needs_reconsent: number;
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
  needsReconsent: r.needs_reconsent === 1,
  refreshTokenCiphertext: r.refresh_token_ciphertext,
  refreshTokenExpiresAt: r.refresh_token_expires_at,
  tokenUpdatedAt: r.token_updated_at,
});

/** External identity links; a taken `(provider, subject)` or `(provider, user_id)` makes `link`/`provision` report false. */
export function createSqliteIdentityStore(db: Db): ExternalIdentityStore {
  const s = {
    find: db.prepare<[string, string], IdentityRow>('SELECT * FROM external_identities WHERE provider = ? AND subject = ?'),
    forUser: db.prepare<[string], IdentityRow>('SELECT * FROM external_identities WHERE user_id = ? ORDER BY provider'),
    insert: db.prepare('INSERT OR IGNORE INTO external_identities (provider, subject, user_id, email, created_at) VALUES (?, ?, ?, ?, ?)'),
    setToken: db.prepare('UPDATE external_identities SET refresh_token_ciphertext = ?, refresh_token_expires_at = ?, token_updated_at = ?, needs_reconsent = 0 WHERE provider = ? AND subject = ?'),
    reconsent: db.prepare('UPDATE external_identities SET needs_reconsent = 1, refresh_token_ciphertext = NULL, refresh_token_expires_at = NULL WHERE provider = ? AND subject = ?'),
  };
  const insert = (i: NewExternalIdentity) => s.insert.run(i.provider, i.subject, i.userId, i.email, i.createdAt).changes === 1;
  const createUser = createUserTransaction(db);
  const provision = db.transaction((user: NewUser, identity: Omit<NewExternalIdentity, 'userId'>) => {
    createUser(user);
    if (!insert({ ...identity, userId: user.id })) throw new IdentityTaken();
  });
  return {
    find: async (provider, subject) => {
      const r = s.find.get(provider, subject);
      return r && toIdentity(r);
    },
    forUser: async (userId) => s.forUser.all(userId).map(toIdentity),
    link: async (identity) => insert(identity),
    provision: async (user, identity) => {
      try {
        provision(user, identity);
        return true;
      } catch (err) {
        if (err instanceof IdentityTaken) return false;
        throw err;
      }
    },
    setRefreshToken: async (provider, subject, t) => s.setToken.run(t.ciphertext, t.expiresAt, t.at, provider, subject).changes === 1,
    markNeedsReconsent: async (provider, subject) => s.reconsent.run(provider, subject).changes === 1,
  };
}

/** Rolls the provisioning transaction back when the identity was linked meanwhile. */
class IdentityTaken extends Error {}
