import { LIMIT_KEYS } from '../lib/limits.js';
import type { Decision, Deny } from './types.js';

const PREFIX = 'x-portcullis-';

export interface UpstreamHeaders {
  /** Identity headers the upstream receives, replacing any inbound ones. */
  set: Array<[string, string]>;
  /** Inbound `x-portcullis-*` headers not overwritten: removed so upstreams never see spoofed ones. */
  remove: string[];
}

/** What an allowed request carries to the upstream, whatever protocol answered the proxy. */
export function upstreamHeaders(decision: Decision, inbound: Iterable<string>): UpstreamHeaders {
  const set: Array<[string, string]> = [[`${PREFIX}decision-id`, decision.decisionId]];
  if (decision.principal) {
    set.push([`${PREFIX}subject`, headerSafe(decision.principal.subject)]);
    if (decision.principal.roles.length) set.push([`${PREFIX}roles`, headerSafe(decision.principal.roles.join(','))]);
  }
  // A loop, no Set or spread: this runs for every allowed Check, and inbound x-portcullis-* headers are rare.
  const remove: string[] = [];
  for (const name of inbound) {
    if (name.startsWith(PREFIX) && !set.some(([k]) => k === name)) remove.push(name);
  }
  return { set, remove };
}

/**
 * The JSON body of a denial: the reason, the decision id, for 400/401 a short description (never
 * for 403), and the config key of an exceeded input limit.
 */
export function denialBody(d: Deny): string {
  const body: Record<string, string> = { error: d.reason, decision_id: d.decisionId };
  if (d.status !== 403) body.error_description = d.description;
  if (d.limit) body.limit = LIMIT_KEYS[d.limit];
  return JSON.stringify(body);
}

/** Header values must be visible ASCII; anything else is percent-encoded. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}
