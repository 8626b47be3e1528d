import { createHash } from 'node:crypto';
import type { ClientRecord } from '../../store/index.js';
import type { IssuerContext } from '../context.js';
import { InvalidGrant, InvalidRequest, UnauthorizedClient } from '../errors.js';
import { safeEqual, sha256 } from '../secrets.js';
import type { TokenResponse } from '../tokens.js';
import { issueUserTokens } from './issue.js';
import type { TokenRequest } from '../dpop_binding.js';

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636, S256 only, required for every client). The code is
 * consumed first (compare-and-set); a second use revokes everything the first one issued.
 */
export async function authorizationCodeGrant(ctx: IssuerContext, client: ClientRecord, params: Record<string, string | undefined>, { ip, jkt }: TokenRequest): Promise<TokenResponse> {
  if (!client.grantTypes.includes('authorization_code')) throw new UnauthorizedClient('the client may not use authorization_code');
  const { code, redirect_uri: redirectUri, code_verifier: verifier } = params;
  if (!code) throw new InvalidRequest('code is required');
  if (!verifier) throw new InvalidRequest('code_verifier is required (PKCE)');
  const now = ctx.clock.now();
  const codeHash = sha256(code);
  // Another client presenting a code neither spends it nor learns anything: checked before the consume.
  const seen = await ctx.store.codes.lookup(codeHash);
  if (seen && seen.clientId !== client.clientId) throw new InvalidGrant('client_mismatch');
  const result = await ctx.store.codes.consume(codeHash, now);
  if (result.status === 'unknown') throw new InvalidGrant('unknown_code');
  const record = result.record;
  if (result.status === 'replayed') {
    // The first exchange may still be issuing: then it sees this mark and revokes its own tokens.
    const first = await ctx.store.codes.markReplayed(codeHash, now);
    await revokeIssued(ctx, first?.familyId ?? null, first?.accessTokenJti ?? null);
    await ctx.audit.record('authorization_code.replay', 'failure', { userId: record.userId, clientId: client.clientId, ip, reason: 'code_replayed' });
    throw new InvalidGrant('code_replayed');
  }
  if (record.clientId !== client.clientId) throw new InvalidGrant('client_mismatch');
  if (record.expiresAt <= now) throw new InvalidGrant('code_expired');
  if (redirectUri !== record.redirectUri) throw new InvalidGrant('redirect_uri_mismatch');
  if (!VERIFIER.test(verifier) || !safeEqual(createHash('sha256').update(verifier).digest('base64url'), record.codeChallenge)) throw new InvalidGrant('pkce_failed');

  const user = await ctx.store.users.byId(record.userId);
  if (!user || user.disabled) throw new InvalidGrant('user_disabled');
  const issued = await issueUserTokens(ctx, {
    client,
    user,
    scope: record.scope,
    audience: record.resource ?? ctx.settings.audience,
    resource: record.resource,
    amr: record.amr,
    authTime: record.authTime,
    nonce: record.nonce,
    jkt,
  });
  if (!(await ctx.store.codes.recordIssued(codeHash, { familyId: issued.familyId, accessTokenJti: issued.jti }))) {
    await revokeIssued(ctx, issued.familyId, issued.jti);
    throw new InvalidGrant('code_replayed');
  }
  return issued.response;
}

async function revokeIssued(ctx: IssuerContext, familyId: string | null, jti: string | null): Promise<void> {
  const now = ctx.clock.now();
  if (familyId) await ctx.store.refresh.revokeFamily(familyId, now, 'code_replay');
  if (jti) await ctx.revoked.revoke(jti, now + ctx.settings.accessTokenTtl * 1000);
}
