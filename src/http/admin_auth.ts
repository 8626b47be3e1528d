import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The admin API key check: `Authorization: Bearer <key>` or basic auth with the key as password.
 * Both sides are hashed first so the comparison is constant-time whatever the lengths; a missing,
 * malformed or wrong key is the same failure.
 */
export function createAdminKeyCheck(apiKey: string | undefined): (authorization: string | undefined) => boolean {
  const expected = apiKey ? digest(apiKey) : undefined;
  return (authorization) => {
    if (!expected) return false;
    const presented = presentedKey(authorization);
    return timingSafeEqual(digest(presented ?? ''), expected) && presented !== undefined;
  };
}

function presentedKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space === -1) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
