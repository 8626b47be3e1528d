import type { PgDb } from './postgres_db.js';
import { json } from './json_column.js';
import { consumedPg } from './postgres_oauth.js';
import { toChallenge, toKey, type ChallengeRow, type KeyRow } from './rows.js';
import type { ChallengeStore, KeyStore, RevocationStore, SigningKeyRecord } from './store.js';

const first = <T>(rows: T[]): T | undefined => rows[0];

const INSERT_KEY = 'INSERT INTO signing_keys (kid, alg, public_jwk, private_ciphertext, created_at, activates_at, retires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)';
const keyParams = (k: SigningKeyRecord) => [k.kid, k.alg, json.write(k.publicJwk), k.privateCiphertext, k.createdAt, k.activatesAt, k.retiresAt];
const RETIRE = 'UPDATE signing_keys SET retires_at = $1 WHERE kid = $2';

export function createPgKeyStore(db: PgDb): KeyStore {
  return {
    insert: async (k) => void (await db.write(INSERT_KEY, keyParams(k))),
    // `seq` is the insertion order (SQLite's rowid).
    list: async () => (await db.read<KeyRow>('SELECT * FROM signing_keys ORDER BY activates_at, created_at, seq')).map(toKey),
    setRetiresAt: async (kid, at) => void (await db.write(RETIRE, [at, kid])),
    rotate: (retiring, next) =>
      db.tx(async (q) => {
        for (const r of retiring) await q(RETIRE, [r.retiresAt, r.kid]);
        await q(INSERT_KEY, keyParams(next));
      }),
  };
}

export function createPgChallengeStore(db: PgDb): ChallengeStore {
  const get = async (id: string) => first(await db.read<ChallengeRow>('SELECT * FROM challenges WHERE id_hash = $1', [id]));
  return {
    save: async (c) => void (await db.write('INSERT INTO challenges (id_hash, kind, user_id, data, expires_at) VALUES ($1, $2, $3, $4, $5)', [c.idHash, c.kind, c.userId, json.write(c.data), c.expiresAt])),
    get: async (id) => {
      const r = await get(id);
      return r && toChallenge(r);
    },
    update: async (id, userId, data) => void (await db.write('UPDATE challenges SET user_id = $1, data = $2 WHERE id_hash = $3 AND consumed_at IS NULL', [userId, json.write(data), id])),
    consume: async (id, at) => {
      const won = await db.write<ChallengeRow>('UPDATE challenges SET consumed_at = $1 WHERE id_hash = $2 AND consumed_at IS NULL RETURNING *', [at, id]);
      return consumedPg(first(won.rows), () => get(id), toChallenge);
    },
    useOnce: async (key, expiresAt) => (await db.write('INSERT INTO used_once (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, expiresAt])).rowCount === 1,
    deleteExpired: async (before) => {
      const sql = 'WITH c AS (DELETE FROM challenges WHERE expires_at < $1 RETURNING 1), o AS (DELETE FROM used_once WHERE expires_at < $1 RETURNING 1) SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM o) AS n';
      return first((await db.write<{ n: number }>(sql, [before])).rows)!.n;
    },
  };
}

export function createPgRevocationStore(db: PgDb): RevocationStore {
  return {
    revoke: async (jti, exp) => void (await db.write('INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING', [jti, exp])),
    isRevoked: async (jti) => (await db.read('SELECT 1 FROM revoked_tokens WHERE jti = $1', [jti])).length > 0,
    active: async (now) => (await db.read<{ jti: string }>('SELECT jti FROM revoked_tokens WHERE expires_at >= $1', [now])).map((r) => r.jti),
  };
}
