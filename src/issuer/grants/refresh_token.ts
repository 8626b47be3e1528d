import type { ClientRecord } from '../../store/index.js';
import type { IssuerContext } from '../context.js';
import { InvalidGrant, InvalidRequest, UnauthorizedClient } from '../errors.js';
import { rotateRefreshToken } from '../refresh.js';
import { narrowedScope } from '../scope.js';
import type { TokenResponse } from '../tokens.js';
import { issueUserTokens } from './issue.js';
import type { TokenRequest } from '../dpop_binding.js';

/** RFC 6749 §6 with rotation: every use returns a new refresh token of the same family. */
export async function refreshTokenGrant(ctx: IssuerContext, client: ClientRecord, params: Record<string, string | undefined>, { ip, jkt }: TokenRequest): Promise<TokenResponse> {
  if (!client.grantTypes.includes('refresh_token')) throw new UnauthorizedClient('the client may not use refresh_token');
  if (!params.refresh_token) throw new InvalidRequest('refresh_token is required');
  const { token, family } = await rotateRefreshToken(ctx, params.refresh_token, client, ip, (f) => {
    narrowedScope(f.scope, params.scope);
    // A bound family is refreshed only with a proof of its key; a refused attempt leaves the token usable.
    if (f.jkt !== null && f.jkt !== jkt) throw new InvalidGrant(jkt === undefined ? 'dpop_proof_required' : 'dpop_key_mismatch');
  });
  const scope = narrowedScope(family.scope, params.scope);
  const user = family.userId ? await ctx.store.users.byId(family.userId) : undefined;
  if (!user || user.disabled) {
    await ctx.store.refresh.revokeFamily(family.id, ctx.clock.now(), 'user_disabled');
    throw new InvalidGrant('user_disabled');
  }
  const issued = await issueUserTokens(ctx, {
    client,
    user,
    scope,
    audience: family.resource ?? ctx.settings.audience,
    resource: family.resource,
    amr: family.amr,
    authTime: family.authTime,
    nonce: null,
    refresh: { token, familyId: family.id },
    jkt,
  });
  return issued.response;
}
