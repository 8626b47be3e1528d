import { DpopError, extractCredential } from '../tokens/index.js';
import type { IssuerContext } from './context.js';
import { InvalidToken, OAuthError, UseDpopNonce } from './errors.js';
import { profileClaims } from './grants/issue.js';
import { verifyOwnAccessToken } from './own_tokens.js';

/** The request as `/userinfo` needs it: the Authorization header, and any DPoP proofs with the method. */
export interface ProtectedRequest {
  authorization: string | undefined;
  dpop: readonly string[] | undefined;
  method: string;
}

/** OIDC Core §5.3 UserInfo: the claims the access token's scopes release. */
export async function userinfo(ctx: IssuerContext, req: ProtectedRequest): Promise<Record<string, unknown>> {
  const payload = await accessTokenOf(ctx, req);
  const scopes = String(payload.scope ?? '').split(' ');
  if (!scopes.includes('openid')) {
    const err = new OAuthError('insufficient_scope', 403, 'the access token lacks the openid scope');
    err.headers['www-authenticate'] = 'Bearer error="insufficient_scope", scope="openid"';
    throw err;
  }
  const user = await ctx.store.users.byId(payload.sub!);
  if (!user || user.disabled) throw new InvalidToken('user_gone');
  return { sub: user.id, ...profileClaims(user, scopes) };
}

/**
 * A verified access token of this module from a protected-resource request: `Bearer` for unbound
 * tokens, `DPoP` with a valid proof for bound ones (RFC 9449 §7); the challenge names the scheme.
 */
async function accessTokenOf(ctx: IssuerContext, req: ProtectedRequest) {
  const credential = extractCredential(req.authorization === undefined ? undefined : [req.authorization]);
  if (credential.kind === 'none' || credential.kind === 'invalid' || (credential.kind === 'dpop' && !ctx.dpop)) {
    // RFC 6750 §3.1: no credentials, no error code in the challenge.
    throw challenge(new InvalidToken('missing_bearer'), 'Bearer');
  }
  const dpopChallenge = `DPoP algs="${ctx.dpop?.algorithms.join(' ') ?? ''}"`;
  const scheme = credential.kind === 'dpop' ? dpopChallenge : 'Bearer';
  const payload = await verifyOwnAccessToken(ctx, credential.token);
  if (!payload) throw challenge(new InvalidToken('invalid_access_token'), `${scheme} error="invalid_token"`);
  const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
  if (credential.kind === 'bearer') {
    if (jkt === undefined) return payload;
    ctx.metrics.dpopRejected.inc({ reason: 'bearer_scheme' });
    throw challenge(new InvalidToken('dpop_bound_token_as_bearer'), 'Bearer error="invalid_token"');
  }
  if (typeof jkt !== 'string') throw challenge(new InvalidToken('token_not_dpop_bound'), `${dpopChallenge}, error="invalid_token"`);
  try {
    await ctx.dpop!.verify({ proofs: req.dpop, method: req.method, urls: [`${ctx.issuer()}/userinfo`], accessToken: credential.token, boundJkt: jkt });
  } catch (err) {
    if (!(err instanceof DpopError)) throw err;
    ctx.metrics.dpopRejected.inc({ reason: err.reason });
    if (err.reason === 'nonce' && ctx.dpop!.nonces) throw challenge(new UseDpopNonce(ctx.dpop!.nonces.current(), 401), `${dpopChallenge}, error="use_dpop_nonce"`);
    throw challenge(new InvalidToken(`dpop_${err.reason}`), `${dpopChallenge}, error="invalid_dpop_proof"`);
  }
  return payload;
}

function challenge<E extends OAuthError>(err: E, value: string): E {
  err.headers['www-authenticate'] = value;
  return err;
}
