import type { PgDb } from './postgres_db.js';
import { json } from './json_column.js';
import { rotationAllowed, toClient, toCode, toFamily, toToken, type ClientRow, type CodeRow, type FamilyRow, type TokenRow } from './rows.js';
import type { ClientStore, CodeStore, Consumed, RefreshFamilyRecord, RefreshStore, RefreshTokenRecord } from './store.js';

const first = <T>(rows: T[]): T | undefined => rows[0];

/** The outcome of a compare-and-set: the row it won, else the row as someone else consumed it (read afresh). */
export async function consumedPg<R, T>(won: R | undefined, lookup: () => Promise<R | undefined>, map: (row: R) => T | Promise<T>): Promise<Consumed<T>> {
  if (won) return { status: 'ok', record: await map(won) };
  const seen = await lookup();
  return seen ? { status: 'replayed', record: await map(seen) } : { status: 'unknown' };
}

export function createPgClientStore(db: PgDb): ClientStore {
  return {
    create: async (c) =>
      void (await db.write(
        'INSERT INTO clients (client_id, name, type, auth_method, secret_hash, jwks, grant_types, redirect_uris, scopes, roles, first_party, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
        [c.clientId, c.name, c.type, c.authMethod, c.secretHash, c.jwks ? json.write(c.jwks) : null, json.write(c.grantTypes), json.write(c.redirectUris), json.write(c.scopes), json.write(c.roles), c.firstParty, c.createdAt],
      )),
    byId: async (id) => {
      const r = first(await db.read<ClientRow>('SELECT * FROM clients WHERE client_id = $1', [id]));
      return r && toClient(r);
    },
    list: async () => (await db.read<ClientRow>('SELECT * FROM clients ORDER BY client_id')).map(toClient),
    remove: async (id) => (await db.write('DELETE FROM clients WHERE client_id = $1', [id])).rowCount === 1,
  };
}

export function createPgCodeStore(db: PgDb): CodeStore {
  const get = async (hash: string) => first(await db.read<CodeRow>('SELECT * FROM authorization_codes WHERE code_hash = $1', [hash]));
  return {
    save: async (c) =>
      void (await db.write(
        'INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, nonce, resource, amr, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
        [c.codeHash, c.clientId, c.userId, c.redirectUri, c.scope, c.codeChallenge, c.nonce, c.resource, json.write(c.amr), c.authTime, c.expiresAt],
      )),
    lookup: async (hash) => {
      const r = await get(hash);
      return r && toCode(r);
    },
    consume: async (hash, at) => {
      const won = await db.write<CodeRow>('UPDATE authorization_codes SET consumed_at = $1 WHERE code_hash = $2 AND consumed_at IS NULL RETURNING *', [at, hash]);
      return consumedPg(first(won.rows), () => get(hash), toCode);
    },
    recordIssued: async (hash, i) => (await db.write('UPDATE authorization_codes SET family_id = $1, access_token_jti = $2 WHERE code_hash = $3 AND replayed_at IS NULL', [i.familyId, i.accessTokenJti, hash])).rowCount === 1,
    markReplayed: async (hash, at) => {
      const r = first((await db.write<{ family_id: string | null; access_token_jti: string | null }>('UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $1) WHERE code_hash = $2 RETURNING family_id, access_token_jti', [at, hash])).rows);
      return r && { familyId: r.family_id, accessTokenJti: r.access_token_jti };
    },
    deleteExpired: async (before) => (await db.write('DELETE FROM authorization_codes WHERE expires_at < $1', [before])).rowCount,
  };
}

type TokenWithFamily = { token: RefreshTokenRecord; family: RefreshFamilyRecord };

const INSERT_TOKEN = 'INSERT INTO refresh_tokens (token_hash, family_id, created_at, idle_expires_at) VALUES ($1, $2, $3, $4)';
const tokenParams = (t: RefreshTokenRecord) => [t.tokenHash, t.familyId, t.createdAt, t.idleExpiresAt];
// Lock order everywhere: the family row first, then its tokens, so rotation and revocation never deadlock.
const REVOKE = 'UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL';
const CONSUME_ALL = 'UPDATE refresh_tokens SET consumed_at = $1 WHERE family_id = ANY($2::text[]) AND consumed_at IS NULL';

export function createPgRefreshStore(db: PgDb): RefreshStore {
  const family = async (id: string) => first(await db.read<FamilyRow>('SELECT * FROM refresh_families WHERE id = $1', [id]));
  const token = async (hash: string) => first(await db.read<TokenRow>('SELECT * FROM refresh_tokens WHERE token_hash = $1', [hash]));
  const withFamily = async (t: TokenRow): Promise<TokenWithFamily> => ({ token: toToken(t), family: toFamily((await family(t.family_id))!) });
  /** Revokes the listed live families and spends their tokens; the second statement sees tokens added until the first took the row locks. */
  const revokeWhere = (select: string, key: string, at: number, reason: string) =>
    db.tx(async (q) => {
      const revoked = await q<{ id: string }>(`UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 WHERE ${select} = $3 AND revoked_at IS NULL RETURNING id`, [at, reason, key]);
      await q(CONSUME_ALL, [at, revoked.rows.map((r) => r.id)]);
      return revoked.rowCount;
    });
  return {
    createFamily: (f, t) =>
      db.tx(async (q) => {
        await q('INSERT INTO refresh_families (id, client_id, user_id, scope, resource, amr, auth_time, created_at, absolute_expires_at, jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', [
          f.id,
          f.clientId,
          f.userId,
          f.scope,
          f.resource,
          json.write(f.amr),
          f.authTime,
          f.createdAt,
          f.absoluteExpiresAt,
          f.jkt,
        ]);
        await q(INSERT_TOKEN, tokenParams(t));
      }),
    family: async (id) => {
      const r = await family(id);
      return r && toFamily(r);
    },
    consume: async (hash, at) => {
      const won = await db.write<TokenRow>('UPDATE refresh_tokens SET consumed_at = $1 WHERE token_hash = $2 AND consumed_at IS NULL RETURNING *', [at, hash]);
      return consumedPg(first(won.rows), () => token(hash), withFamily);
    },
    rotate: async (hash, at, next) => {
      const won = await db.tx(async (q) => {
        const fam = first((await q<FamilyRow>('SELECT * FROM refresh_families WHERE id = $1 FOR SHARE', [next.familyId])).rows);
        const row = first((await q<TokenRow>('UPDATE refresh_tokens SET consumed_at = $1 WHERE token_hash = $2 AND family_id = $3 AND consumed_at IS NULL RETURNING *', [at, hash, next.familyId])).rows);
        if (!fam || !row) return undefined;
        if (rotationAllowed(fam, row, at)) await q(INSERT_TOKEN, tokenParams(next));
        return { token: toToken(row), family: toFamily(fam) };
      });
      if (won) return { status: 'ok', record: won };
      const seen = await token(hash);
      return seen && seen.family_id === next.familyId ? { status: 'replayed', record: await withFamily(seen) } : { status: 'unknown' };
    },
    add: async (t) => void (await db.write(INSERT_TOKEN, tokenParams(t))),
    revokeFamily: (id, at, reason) =>
      db.tx(async (q) => {
        const changed = (await q(REVOKE, [at, reason, id])).rowCount === 1;
        await q(CONSUME_ALL, [at, [id]]);
        return changed;
      }),
    revokeUser: (userId, at, reason) => revokeWhere('user_id', userId, at, reason),
    revokeClient: (clientId, at, reason) => revokeWhere('client_id', clientId, at, reason),
    lookup: async (hash) => {
      const t = await token(hash);
      return t && withFamily(t);
    },
  };
}
