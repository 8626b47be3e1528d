import { randomUUID } from 'node:crypto';
import type { ClientRecord, RefreshFamilyRecord } from '../store/index.js';
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
 * Rotates a refresh token: the presented one is consumed (compare-and-set) and a new one of the
 * same family returned. A token used a second time, whether replayed by an attacker or by the
 * legitimate client after a theft, revokes the whole family (OAuth 2.1 §4.3.1).
 */
export async function rotateRefreshToken(
  ctx: IssuerContext,
  presented: string,
  client: ClientRecord,
  ip: string | null,
  /** Checks the request against the family before the token is spent (a refused request leaves it usable). */
  precheck: (family: RefreshFamilyRecord) => void = () => {},
): Promise<{ token: string; family: RefreshFamilyRecord }> {
  const hash = sha256(presented);
  const now = ctx.clock.now();
  // Bound to its client: another client's presentation neither consumes nor reveals it.
  const seen = await ctx.store.refresh.lookup(hash);
  if (!seen || seen.family.clientId !== client.clientId) throw new InvalidGrant(seen ? 'client_mismatch' : 'unknown_refresh_token');
  if (seen.token.consumedAt === null) precheck(seen.family);
  const result = await ctx.store.refresh.consume(hash, now);
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
  if (family.revokedAt !== null) throw new InvalidGrant('family_revoked');
  if (token.idleExpiresAt <= now) throw new InvalidGrant('refresh_token_idle_expired');
  if (family.absoluteExpiresAt <= now) throw new InvalidGrant('refresh_family_expired');

  const next = randomToken();
  await ctx.store.refresh.add({ tokenHash: sha256(next), familyId: family.id, createdAt: now, idleExpiresAt: Math.min(now + ctx.settings.refreshIdle * 1000, family.absoluteExpiresAt), consumedAt: null });
  return { token: next, family };
}
