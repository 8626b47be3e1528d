import { z } from 'zod';
import type { AuditQuery } from '../store/index.js';
import type { IssuerContext } from './context.js';

/**
 * The audit log query of `GET /admin/audit` and `portcullis audit tail`: every parameter
 * validated (a bad one is named), users given by id and matched through their keyed hash, pages
 * chained by an opaque cursor. Newest first.
 */
const params = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    kind: z.string().regex(/^[a-z_]+(\.[a-z_]+)*$/, 'must be an event kind such as login.password').max(100).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    until: z.iso.datetime({ offset: true }).optional(),
    user_id: z.string().min(1).max(256).optional(),
    cursor: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'is not a cursor from a previous page').optional(),
  })
  .strict();

export type AuditQueryParse = { ok: true; query: AuditQuery } | { ok: false; error: string };

export function parseAuditQuery(ctx: IssuerContext, raw: unknown): AuditQueryParse {
  const r = params.safeParse(raw);
  if (!r.success) return { ok: false, error: r.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ') };
  const before = r.data.cursor === undefined ? undefined : decodeCursor(r.data.cursor);
  if (before === null) return { ok: false, error: 'cursor: is not a cursor from a previous page' };
  const since = r.data.since ? Date.parse(r.data.since) : undefined;
  const until = r.data.until ? Date.parse(r.data.until) : undefined;
  if (since !== undefined && until !== undefined && since >= until) return { ok: false, error: 'since: must be before until' };
  return { ok: true, query: { limit: r.data.limit, type: r.data.kind, actor: r.data.user_id ? ctx.audit.userRef(r.data.user_id) : undefined, since, until, before } };
}

export async function queryAudit(ctx: IssuerContext, query: AuditQuery) {
  const rows = await ctx.store.audit.query(query);
  const last = rows[rows.length - 1];
  return {
    events: rows.map((r) => ({ id: r.id, at: new Date(r.at).toISOString(), kind: r.type, outcome: r.outcome, actor: r.actor, client_id: r.clientId, ip: r.ip, reason: r.reason, details: r.details })),
    next_cursor: rows.length === query.limit && last ? Buffer.from(`b${last.id}`).toString('base64url') : null,
  };
}

function decodeCursor(cursor: string): number | null {
  const m = /^b(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}
