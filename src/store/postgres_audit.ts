import type { PgDb } from './postgres_db.js';
import { json } from './json_column.js';
import { toAudit, type AuditRow } from './rows.js';
import type { AuditQuery, AuditStore } from './store.js';

/**
 * The audit query with only the filters given, so the planner sees plain equality and range
 * conditions and uses `audit_events_type` (type, id), `audit_events_actor` (actor, id) or
 * `audit_events_at` (at); a catch-all `($1 IS NULL OR type = $1)` would hide them.
 */
export function auditQuerySql(q: AuditQuery): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const where: string[] = [];
  const add = (condition: string, value: unknown) => {
    values.push(value);
    where.push(`${condition} $${values.length}`);
  };
  if (q.type !== undefined) add('type =', q.type);
  if (q.actor !== undefined) add('actor =', q.actor);
  if (q.since !== undefined) add('at >=', q.since);
  if (q.until !== undefined) add('at <', q.until);
  if (q.before !== undefined) add('id <', q.before);
  values.push(q.limit);
  return { text: `SELECT * FROM audit_events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${values.length}`, values };
}

export function createPgAuditStore(db: PgDb): AuditStore {
  return {
    append: async (e) =>
      void (await db.write('INSERT INTO audit_events (at, type, outcome, actor, client_id, ip, reason, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        e.at,
        e.type,
        e.outcome,
        e.actor,
        e.clientId,
        e.ip,
        e.reason,
        json.write(e.details),
      ])),
    query: async (q) => {
      const { text, values } = auditQuerySql(q);
      return (await db.read<AuditRow>(text, values)).map(toAudit);
    },
  };
}
