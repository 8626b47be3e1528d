import { randomUUID } from 'node:crypto';
import { isPortcullisError } from '../lib/errors.js';
import type { ClientRecord, RefreshFamilyRecord, RefreshTokenRecord } from '../store/index.js';
import type { IssuerContext } from './context.js';
import { InvalidGrant } from './errors.js';
import { randomToken, sha256 } from './secrets.js';

export interface FamilyStart {
  client: ClientRecord;
  userId: string | null;
  scope: string;
  resource: string | null;
  amr: string[];
  authTime: number;
  /** Public clients' families are bound to their DPoP key (RFC 9449 §5); confidential clients are bound by their authentication. */
  jkt?: string | undefined;
}

/** Starts a refresh-token family; returns its first (opaque, 256-bit) token and the family id. */
export async function startFamily(ctx: IssuerContext, f: FamilyStart): Promise<{ token: string; familyId: string }> {
  const now = ctx.clock.now();
  const { refreshIdle, refreshAbsolute } = ctx.settings;
  const family: RefreshFamilyRecord = {
    id: randomUUID(),
    clientId: f.client.clientId,
    userId: f.userId,
    scope: f.scope,
    resource: f.resource,
    amr: f.amr,
    authTime: f.authTime,
    createdAt: now,
    absoluteExpiresAt: now + refreshAbsolute * 1000,
    revokedAt: null,
    revokedReason: null,
    jkt: f.jkt ?? null,
  };
  const token = randomToken();
  await ctx.store.refresh.createFamily(family, { tokenHash: sha256(token), familyId: family.id, createdAt: now, idleExpiresAt: Math.min(now + refreshIdle * 1000, family.absoluteExpiresAt), consumedAt: null });
  return { token, familyId: family.id };
}

/**
 * Rotates a refresh token: the presented one is consumed and its successor stored in one atomic
 * step (compare-and-set), and the successor returned. A token used a second time, whether
 * replayed by an attacker or by the legitimate client after a theft, revokes the whole family
 * (OAuth 2.1 §4.3.1). A store outage leaves the presented token usable: the rotation happened
 * entirely or not at all.
 */
export async function rotateRefreshToken(
  ctx: IssuerContext,
  presented: string,
  client: ClientRecord,
  ip: string | null,
  /** Checks the request against the family before the token is spent (a refused request leaves it usable). */
  precheck: (family: RefreshFamilyRecord) => void | Promise<void> = () => {},
): Promise<{ token: string; family: RefreshFamilyRecord }> {
  const hash = sha256(presented);
  const now = ctx.clock.now();
  // Bound to its client: another client's presentation neither consumes nor reveals it.
  const seen = await ctx.store.refresh.lookup(hash);
  if (!seen || seen.family.clientId !== client.clientId) throw new InvalidGrant(seen ? 'client_mismatch' : 'unknown_refresh_token');
  if (seen.token.consumedAt === null) await precheck(seen.family);
  const next = randomToken();
  const successor: RefreshTokenRecord = {
    tokenHash: sha256(next),
    familyId: seen.family.id,
    createdAt: now,
    idleExpiresAt: Math.min(now + ctx.settings.refreshIdle * 1000, seen.family.absoluteExpiresAt),
    consumedAt: null,
  };
  const result = await rotate(ctx, hash, now, successor, seen.token);
  if (result.status === 'unknown') throw new InvalidGrant('unknown_refresh_token');
  const { family, token } = result.record;
  if (result.status === 'replayed') {
    if (family.revokedAt === null) {
      await ctx.store.refresh.revokeFamily(family.id, now, 'reuse');
      ctx.metrics.refreshReuse.inc();
      await ctx.audit.record('refresh_token.reuse', 'failure', { userId: family.userId, clientId: client.clientId, ip, reason: 'refresh_token_reused', details: { family: family.id } });
    }
    throw new InvalidGrant(family.revokedAt === null ? 'refresh_token_reused' : 'family_revoked');
  }
  // The store stored no successor in these cases.
  if (family.revokedAt !== null) throw new InvalidGrant('family_revoked');
  if (token.idleExpiresAt <= now) throw new InvalidGrant('refresh_token_idle_expired');
  if (family.absoluteExpiresAt <= now) throw new InvalidGrant('refresh_family_expired');
  return { token: next, family };
}

/**
 * The store's rotation. When the connection fails, the transaction may still have committed with
 * its answer lost: the successor being in the store (a retried read) tells that it did, and the
 * client gets it rather than a 503 that would make its next, legitimate retry look like a reuse.
 */
async function rotate(ctx: IssuerContext, hash: string, now: number, successor: RefreshTokenRecord, presented: RefreshTokenRecord): ReturnType<IssuerContext['store']['refresh']['rotate']> {
  try {
    return await ctx.store.refresh.rotate(hash, now, successor);
  } catch (err) {
    if (!isPortcullisError(err, 'ERR_STORE_UNAVAILABLE')) throw err;
    const landed = await ctx.store.refresh.lookup(successor.tokenHash).catch(() => undefined);
    if (!landed) throw err;
    ctx.logger.warn({ family: landed.family.id }, 'refresh rotation committed although its answer was lost; answering with the stored successor');
    return { status: 'ok', record: { token: { ...presented, consumedAt: now }, family: landed.family } };
  }
}
