import { jwtVerify, type JWTPayload } from 'jose';
import type { IssuerContext } from './context.js';

/** Verifies an access token this module issued (keys in-process, not revoked); undefined if not. */
export async function verifyOwnAccessToken(ctx: IssuerContext, token: string): Promise<JWTPayload | undefined> {
  if (token.length > 16 * 1024 || token.split('.').length !== 3) return undefined;
  try {
    const { payload } = await jwtVerify(token, (header) => ctx.keyring.keySource.keysFor(header).then((k) => k[0]!) as never, {
      issuer: ctx.issuer(),
      typ: 'at+jwt',
      algorithms: ['ES256', 'EdDSA', 'RS256'],
      currentDate: new Date(ctx.clock.now()),
      requiredClaims: ['exp', 'sub', 'jti', 'client_id'],
    });
    if (ctx.revoked.has(payload.jti!)) return undefined;
    return payload;
  } catch {
    return undefined;
  }
}
