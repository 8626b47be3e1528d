/** The authenticated caller, as the rest of the pipeline sees it. */
export interface Principal {
  subject: string;
  issuer: string;
  roles: readonly string[];
  scopes: readonly string[];
  /** `client_id`, else `azp`, else "". */
  clientId: string;
  /** `amr` holds `mfa` or `otp`. */
  mfa: boolean;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
  /** The DPoP key the token is bound to (`cnf.jkt`, RFC 9449 §6); such a token needs a proof on every use. */
  boundJkt: string | undefined;
  /** Verified claims of the token. */
  claims: Readonly<Record<string, unknown>>;
}

export interface ClaimMapping {
  roles_claim: string;
  scope_claim: string;
}

export function principalFromClaims(claims: Record<string, unknown>, issuer: string, mapping: ClaimMapping): Principal {
  const amr = Array.isArray(claims.amr) ? claims.amr : [];
  return {
    subject: claims.sub as string,
    issuer,
    roles: stringList(readPath(claims, mapping.roles_claim)),
    scopes: stringList(claims[mapping.scope_claim] ?? (mapping.scope_claim === 'scope' ? claims.scp : undefined)),
    clientId: typeof claims.client_id === 'string' ? claims.client_id : typeof claims.azp === 'string' ? claims.azp : '',
    mfa: amr.includes('mfa') || amr.includes('otp'),
    expiresAt: (claims.exp as number) * 1000,
    boundJkt: boundJkt(claims.cnf),
    claims,
  };
}

function boundJkt(cnf: unknown): string | undefined {
  if (typeof cnf !== 'object' || cnf === null || !Object.hasOwn(cnf, 'jkt')) return undefined;
  const jkt = (cnf as Record<string, unknown>).jkt;
  // A cnf.jkt that is not a thumbprint string still binds the token: no proof can ever match it.
  return typeof jkt === 'string' ? jkt : '';
}

/** Reads a dotted path (`realm_access.roles`); a key that itself contains dots is tried whole first. */
export function readPath(obj: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(obj, path)) return obj[path];
  let node: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** An array of strings, or a space-separated string, as a list of non-empty strings. */
function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.length > 0);
  return [];
}
