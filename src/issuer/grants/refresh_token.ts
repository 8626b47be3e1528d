import type { ClientRecord, UserRecord } from '../../store/index.js';
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
  // Everything that reads the store happens before the rotation, so once the rotation has
  // committed nothing left can fail on the store and lose the successor the client never saw.
  let user: UserRecord | undefined;
  const { token, family } = await rotateRefreshToken(ctx, params.refresh_token, client, ip, async (f) => {
    narrowedScope(f.scope, params.scope);
    // A bound family is refreshed only with a proof of its key; a refused attempt leaves the token usable.
    if (f.jkt !== null && f.jkt !== jkt) throw new InvalidGrant(jkt === undefined ? 'dpop_proof_required' : 'dpop_key_mismatch');
    user = f.userId ? await ctx.store.users.byId(f.userId) : undefined;
    if (!user || user.disabled) {
      await ctx.store.refresh.revokeFamily(f.id, ctx.clock.now(), 'user_disabled');
      throw new InvalidGrant('user_disabled');
    }
  });
  if (!user) throw new InvalidGrant('user_disabled');
  const scope = narrowedScope(family.scope, params.scope);
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
