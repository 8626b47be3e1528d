/** What the Authorization header(s) of a request hold. */
export type Credential =
  | { kind: 'none' }
  | { kind: 'bearer'; token: string }
  | { kind: 'dpop'; token: string }
  | { kind: 'invalid'; detail: string };

/**
 * Extracts a bearer (RFC 6750 §2.1) or DPoP (RFC 9449 §7.1) access token; schemes are
 * case-insensitive. Other schemes count as no credential; several Authorization headers are
 * ambiguous and invalid.
 */
export function extractCredential(authorization: readonly string[] | undefined): Credential {
  if (!authorization || authorization.length === 0) return { kind: 'none' };
  if (authorization.length > 1) return { kind: 'invalid', detail: 'multiple authorization headers' };
  const value = authorization[0]!.trim();
  const space = value.indexOf(' ');
  const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'dpop') return { kind: 'none' };
  const token = space === -1 ? '' : value.slice(space + 1).trim();
  if (token === '') return { kind: 'invalid', detail: `empty ${scheme} token` };
  return { kind: scheme, token };
}
