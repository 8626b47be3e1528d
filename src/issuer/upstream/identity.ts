import { principalFromClaims, readPath } from '../../tokens/principal.js';
import type { UpstreamProvider } from './provider.js';

/** An account at an upstream provider, as the claim mapping of its configuration reads it. */
export interface ExternalIdentity {
  provider: string;
  subject: string;
  email: string | null;
  /** Only the boolean `true` counts as verified. */
  emailVerified: boolean;
  name: string | null;
  /** From `claims.roles`, when configured. */
  roles: string[];
}

const MAX_SUBJECT = 255;

/** Reads the identity from verified claims (ID token, merged with userinfo when fetched); null when `sub` is unusable. */
export function externalIdentity(provider: UpstreamProvider, claims: Readonly<Record<string, unknown>>): ExternalIdentity | null {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT) return null;
  const map = provider.settings.claims;
  const text = (path: string, max: number) => {
    const v = readPath(claims as Record<string, unknown>, path);
    return typeof v === 'string' && v.length > 0 && v.length <= max ? v : null;
  };
  return {
    provider: provider.id,
    subject: sub,
    email: text(map.email, 320),
    emailVerified: readPath(claims as Record<string, unknown>, map.email_verified) === true,
    name: text(map.name, 200),
    roles: map.roles ? [...principalFromClaims({ ...claims, exp: 0 }, provider.issuer, { roles_claim: map.roles, scope_claim: 'scope' }).roles] : [],
  };
}
