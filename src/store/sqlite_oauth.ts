import type { Db } from './sqlite.js';
import { json } from './json_column.js';
import { rotationAllowed, toClient, toCode, toFamily, toToken, type ClientRow, type CodeRow, type FamilyRow, type TokenRow } from './rows.js';
import type { ClientStore, CodeStore, Consumed, RefreshFamilyRecord, RefreshStore, RefreshTokenRecord } from './store.js';

export function createSqliteClientStore(db: Db): ClientStore {
  const insert = db.prepare(
    'INSERT INTO clients (client_id, name, type, auth_method, secret_hash, jwks, grant_types, redirect_uris, scopes, roles, first_party, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const byId = db.prepare<[string], ClientRow>('SELECT * FROM clients WHERE client_id = ?');
  const list = db.prepare<[], ClientRow>('SELECT * FROM clients ORDER BY client_id');
  const remove = db.prepare('DELETE FROM clients WHERE client_id = ?');
  return {
    create: async (c) =>
      void insert.run(c.clientId, c.name, c.type, c.authMethod, c.secretHash, c.jwks ? json.write(c.jwks) : null, json.write(c.grantTypes), json.write(c.redirectUris), json.write(c.scopes), json.write(c.roles), c.firstParty ? 1 : 0, c.createdAt),
    byId: async (id) => {
      const r = byId.get(id);
      return r && toClient(r);
    },
    list: async () => list.all().map(toClient),
    remove: async (id) => remove.run(id).changes === 1,
  };
}

export function createSqliteCodeStore(db: Db): CodeStore {
  const insert = db.prepare(
    'INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, nonce, resource, amr, auth_time, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const consume = db.prepare<[number, string], CodeRow>('UPDATE authorization_codes SET consumed_at = ? WHERE code_hash = ? AND consumed_at IS NULL RETURNING *');
  const get = db.prepare<[string], CodeRow>('SELECT * FROM authorization_codes WHERE code_hash = ?');
  const issued = db.prepare('UPDATE authorization_codes SET family_id = ?, access_token_jti = ? WHERE code_hash = ? AND replayed_at IS NULL');
  const replayed = db.prepare<[number, string], { family_id: string | null; access_token_jti: string | null }>(
    'UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, ?) WHERE code_hash = ? RETURNING family_id, access_token_jti',
  );
  const expired = db.prepare('DELETE FROM authorization_codes WHERE expires_at < ?');
  return {
    save: async (c) => void insert.run(c.codeHash, c.clientId, c.userId, c.redirectUri, c.scope, c.codeChallenge, c.nonce, c.resource, json.write(c.amr), c.authTime, c.expiresAt),
    lookup: async (hash) => {
      const r = get.get(hash);
      return r && toCode(r);
    },
    consume: async (hash, at) => consumed(consume.get(at, hash), () => get.get(hash), toCode),
    recordIssued: async (hash, i) => issued.run(i.familyId, i.accessTokenJti, hash).changes === 1,
    markReplayed: async (hash, at) => {
      const r = replayed.get(at, hash);
      return r && { familyId: r.family_id, accessTokenJti: r.access_token_jti };
    },
    deleteExpired: async (before) => expired.run(before).changes,
  };
}

export function createSqliteRefreshStore(db: Db): RefreshStore {
  const s = {
    insertFamily: db.prepare('INSERT INTO refresh_families (id, client_id, user_id, scope, resource, amr, auth_time, created_at, absolute_expires_at, jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    insertToken: db.prepare('INSERT INTO refresh_tokens (token_hash, family_id, created_at, idle_expires_at) VALUES (?, ?, ?, ?)'),
    family: db.prepare<[string], FamilyRow>('SELECT * FROM refresh_families WHERE id = ?'),
    consume: db.prepare<[number, string], TokenRow>('UPDATE refresh_tokens SET consumed_at = ? WHERE token_hash = ? AND consumed_at IS NULL RETURNING *'),
    consumeIn: db.prepare<[number, string, string], TokenRow>('UPDATE refresh_tokens SET consumed_at = ? WHERE token_hash = ? AND family_id = ? AND consumed_at IS NULL RETURNING *'),
    token: db.prepare<[string], TokenRow>('SELECT * FROM refresh_tokens WHERE token_hash = ?'),
    revoke: db.prepare('UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL'),
    consumeAll: db.prepare('UPDATE refresh_tokens SET consumed_at = ? WHERE family_id = ? AND consumed_at IS NULL'),
    liveOfUser: db.prepare<[string], { id: string }>('SELECT id FROM refresh_families WHERE user_id = ? AND revoked_at IS NULL'),
    liveOfClient: db.prepare<[string], { id: string }>('SELECT id FROM refresh_families WHERE client_id = ? AND revoked_at IS NULL'),
  };
  const addToken = (t: RefreshTokenRecord) => s.insertToken.run(t.tokenHash, t.familyId, t.createdAt, t.idleExpiresAt);
  const createFamily = db.transaction((f: RefreshFamilyRecord, t: RefreshTokenRecord) => {
    s.insertFamily.run(f.id, f.clientId, f.userId, f.scope, f.resource, json.write(f.amr), f.authTime, f.createdAt, f.absoluteExpiresAt, f.jkt);
    addToken(t);
  });
  const revoke = db.transaction((id: string, at: number, reason: string) => {
    const changed = s.revoke.run(at, reason, id).changes === 1;
    s.consumeAll.run(at, id);
    return changed;
  });
  const revokeAll = db.transaction((ids: Array<{ id: string }>, at: number, reason: string) => ids.filter(({ id }) => revoke(id, at, reason)).length);
  const withFamily = (t: TokenRow) => ({ token: toToken(t), family: toFamily(s.family.get(t.family_id)!) });
  const rotate = db.transaction((hash: string, at: number, next: RefreshTokenRecord) => {
    const won = s.consumeIn.get(at, hash, next.familyId);
    if (won && rotationAllowed(s.family.get(won.family_id)!, won, at)) addToken(next);
    const seen = won ? undefined : s.token.get(hash);
    return consumed(won, () => (seen?.family_id === next.familyId ? seen : undefined), withFamily);
  });
  return {
    createFamily: async (f, t) => void createFamily(f, t),
    family: async (id) => {
      const r = s.family.get(id);
      return r && toFamily(r);
    },
    consume: async (hash, at) => consumed(s.consume.get(at, hash), () => s.token.get(hash), withFamily),
    rotate: async (hash, at, next) => rotate(hash, at, next),
    add: async (t) => void addToken(t),
    revokeFamily: async (id, at, reason) => revoke(id, at, reason),
    revokeUser: async (userId, at, reason) => revokeAll(s.liveOfUser.all(userId), at, reason),
    revokeClient: async (clientId, at, reason) => revokeAll(s.liveOfClient.all(clientId), at, reason),
    lookup: async (hash) => {
      const t = s.token.get(hash);
      return t && withFamily(t);
    },
  };
}

/** The outcome of a compare-and-set: the row it won, or the row someone else already consumed. */
export function consumed<R, T>(won: R | undefined, lookup: () => R | undefined, map: (row: R) => T): Consumed<T> {
  if (won) return { status: 'ok', record: map(won) };
  const seen = lookup();
  return seen ? { status: 'replayed', record: map(seen) } : { status: 'unknown' };
}
