import { createHash, randomUUID } from 'node:crypto';
import { nowSeconds, type IssuerContext } from './context.js';

export interface AccessTokenClaims {
  sub: string;
  clientId: string;
  scope: string;
  roles: readonly string[];
  amr: readonly string[];
  audience: string;
  authTime?: number | undefined;
  /** Binds the token to this DPoP key (`cnf.jkt`). */
  jkt?: string | undefined;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresIn: number;
  expiresAtMs: number;
}

/** An RFC 9068 JWT access token signed with the current key. */
export async function issueAccessToken(ctx: IssuerContext, c: AccessTokenClaims): Promise<IssuedAccessToken> {
  const signer = await ctx.keyring.signer();
  const iat = nowSeconds(ctx.clock);
  const ttl = ctx.settings.accessTokenTtl;
  const jti = randomUUID();
  const claims: Record<string, unknown> = {
    iss: ctx.issuer(),
    sub: c.sub,
    aud: c.audience,
    iat,
    exp: iat + ttl,
    jti,
    client_id: c.clientId,
    scope: c.scope,
    roles: [...c.roles],
    amr: [...c.amr],
  };
  if (c.authTime !== undefined) claims.auth_time = c.authTime;
  if (c.jkt !== undefined) claims.cnf = { jkt: c.jkt };
  const token = signer.sign({ typ: 'at+jwt' }, claims);
  return { token, jti, expiresIn: ttl, expiresAtMs: (iat + ttl) * 1000 };
}

export interface IdTokenClaims {
  sub: string;
  clientId: string;
  nonce: string | null;
  amr: readonly string[];
  authTime: number;
  accessToken?: string;
  profile?: Record<string, unknown>;
}

/** An OpenID Connect Core ID token (§2), with `at_hash` when issued beside an access token. */
export async function issueIdToken(ctx: IssuerContext, c: IdTokenClaims): Promise<string> {
  const signer = await ctx.keyring.signer();
  const iat = nowSeconds(ctx.clock);
  const claims: Record<string, unknown> = { ...c.profile, auth_time: c.authTime, amr: [...c.amr], azp: c.clientId };
  if (c.nonce) claims.nonce = c.nonce;
  if (c.accessToken) claims.at_hash = leftHalfHash(c.accessToken, signer.alg);
  return signer.sign({ typ: 'JWT' }, { ...claims, iss: ctx.issuer(), sub: c.sub, aud: c.clientId, iat, exp: iat + ctx.settings.idTokenTtl });
}

/** OIDC `at_hash`: left half of the hash the signing alg uses (SHA-256 for ES256/RS256, SHA-512 for Ed25519). */
function leftHalfHash(value: string, alg: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256').update(value).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** `DPoP` when the access token is bound to a proof key, else `Bearer`. */
export const tokenType = (jkt: string | undefined): 'Bearer' | 'DPoP' => (jkt === undefined ? 'Bearer' : 'DPoP');

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
  /** RFC 8693 token exchange: what `access_token` holds. */
  issued_token_type?: string;
}
