import type { Db } from './sqlite.js';
import { json } from './json_column.js';
import { toAudit, toChallenge, toKey, type AuditRow, type ChallengeRow, type KeyRow } from './rows.js';
import { consumed } from './sqlite_oauth.js';
import type { AuditEvent, AuditStore, ChallengeStore, KeyStore, RevocationStore, SigningKeyRecord } from './store.js';

export function createSqliteKeyStore(db: Db): KeyStore {
  const insert = db.prepare('INSERT INTO signing_keys (kid, alg, public_jwk, private_ciphertext, created_at, activates_at, retires_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const list = db.prepare<[], KeyRow>('SELECT * FROM signing_keys ORDER BY activates_at, created_at, rowid');
  const retire = db.prepare('UPDATE signing_keys SET retires_at = ? WHERE kid = ?');
  const add = (k: SigningKeyRecord) => insert.run(k.kid, k.alg, json.write(k.publicJwk), k.privateCiphertext, k.createdAt, k.activatesAt, k.retiresAt);
  const rotate = db.transaction((retiring: Array<{ kid: string; retiresAt: number }>, next: SigningKeyRecord) => {
    for (const r of retiring) retire.run(r.retiresAt, r.kid);
    add(next);
  });
  return {
    insert: async (k) => void add(k),
    list: async () => list.all().map(toKey),
    setRetiresAt: async (kid, at) => void retire.run(at, kid),
    rotate: async (retiring, next) => void rotate(retiring, next),
  };
}

export function createSqliteChallengeStore(db: Db): ChallengeStore {
  const s = {
    insert: db.prepare('INSERT INTO challenges (id_hash, kind, user_id, data, expires_at) VALUES (?, ?, ?, ?, ?)'),
    get: db.prepare<[string], ChallengeRow>('SELECT * FROM challenges WHERE id_hash = ?'),
    update: db.prepare('UPDATE challenges SET user_id = ?, data = ? WHERE id_hash = ? AND consumed_at IS NULL'),
    consume: db.prepare<[number, string], ChallengeRow>('UPDATE challenges SET consumed_at = ? WHERE id_hash = ? AND consumed_at IS NULL RETURNING *'),
    once: db.prepare('INSERT OR IGNORE INTO used_once (key, expires_at) VALUES (?, ?)'),
    expiredChallenges: db.prepare('DELETE FROM challenges WHERE expires_at < ?'),
    expiredOnce: db.prepare('DELETE FROM used_once WHERE expires_at < ?'),
  };
  return {
    save: async (c) => void s.insert.run(c.idHash, c.kind, c.userId, json.write(c.data), c.expiresAt),
    get: async (id) => {
      const r = s.get.get(id);
      return r && toChallenge(r);
    },
    update: async (id, userId, data) => void s.update.run(userId, json.write(data), id),
    consume: async (id, at) => consumed(s.consume.get(at, id), () => s.get.get(id), toChallenge),
    useOnce: async (key, expiresAt) => s.once.run(key, expiresAt).changes === 1,
    deleteExpired: async (before) => s.expiredChallenges.run(before).changes + s.expiredOnce.run(before).changes,
  };
}

export function createSqliteRevocationStore(db: Db): RevocationStore {
  const insert = db.prepare('INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)');
  const get = db.prepare<[string], { jti: string }>('SELECT jti FROM revoked_tokens WHERE jti = ?');
  const active = db.prepare<[number], { jti: string }>('SELECT jti FROM revoked_tokens WHERE expires_at >= ?');
  return {
    revoke: async (jti, exp) => void insert.run(jti, exp),
    isRevoked: async (jti) => get.get(jti) !== undefined,
    active: async (now) => active.all(now).map((r) => r.jti),
  };
}

export function createSqliteAuditStore(db: Db): AuditStore {
  const insert = db.prepare('INSERT INTO audit_events (at, type, outcome, actor, client_id, ip, reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const query = db.prepare<{ type: string | null; actor: string | null; since: number | null; until: number | null; before: number | null; limit: number }, AuditRow>(
    'SELECT * FROM audit_events WHERE (@type IS NULL OR type = @type) AND (@actor IS NULL OR actor = @actor) AND (@since IS NULL OR at >= @since) AND (@until IS NULL OR at < @until) AND (@before IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit',
  );
  const insertAll = db.transaction((events: AuditEvent[]) => {
    for (const e of events) insert.run(e.at, e.type, e.outcome, e.actor, e.clientId, e.ip, e.reason, json.write(e.details));
  });
  // Group commit: the events appended during one turn of the event loop are written in one
  // transaction on the next, and each append resolves once its row is committed. Under load that is
  // one WAL commit for many events instead of one each; alone, it costs one tick.
  let pending: Array<{ event: AuditEvent; done: (err?: unknown) => void }> = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    try {
      insertAll(batch.map((p) => p.event));
      for (const p of batch) p.done();
    } catch (err) {
      for (const p of batch) p.done(err);
    }
  };
  return {
    append: (event) =>
      new Promise<void>((resolve, reject) => {
        if (pending.length === 0) setImmediate(flush);
        pending.push({ event, done: (err) => (err === undefined ? resolve() : reject(err)) });
      }),
    query: async (q) => {
      // Reads see every event appended before them.
      if (pending.length) flush();
      return query.all({ type: q.type ?? null, actor: q.actor ?? null, since: q.since ?? null, until: q.until ?? null, before: q.before ?? null, limit: q.limit }).map(toAudit);
    },
  };
}
