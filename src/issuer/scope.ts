import type { ClientRecord } from '../store/index.js';
import type { IssuerSettings } from './context.js';
import { InvalidScope, InvalidTarget } from './errors.js';

/** Parses a space-separated scope; every scope must be one the client is registered for. */
export function grantedScope(client: ClientRecord, requested: string | undefined, fallback: readonly string[] = client.scopes): string[] {
  const asked = requested === undefined ? [...fallback] : requested.split(' ').filter(Boolean);
  for (const s of asked) if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s) || !client.scopes.includes(s)) throw new InvalidScope();
  return [...new Set(asked)];
}

/** A requested scope on refresh may only narrow what was granted (RFC 6749 §6). */
export function narrowedScope(granted: string, requested: string | undefined): string {
  if (requested === undefined) return granted;
  const have = new Set(granted.split(' ').filter(Boolean));
  const asked = requested.split(' ').filter(Boolean);
  for (const s of asked) if (!have.has(s)) throw new InvalidScope('the requested scope exceeds the original grant');
  return [...new Set(asked)].join(' ');
}

/** RFC 8707: the audience of an access token is the requested resource, when it is one we serve. */
export function audienceFor(settings: IssuerSettings, resource: string | undefined): string {
  if (resource === undefined || resource === settings.audience) return settings.audience;
  if (!settings.resources.includes(resource)) throw new InvalidTarget();
  return resource;
}
