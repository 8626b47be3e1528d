import { redactUrl } from '../lib/redact_url.js';
import type { Config } from './schema.js';

/** Keys whose values are secrets: shown as set, never printed. */
const SECRET_KEYS = new Set(['api_key', 'kek', 'client_secret']);

/**
 * The configuration as it may be printed (`config check`): secret keys become `[redacted]` and
 * the password of any URL with credentials (`store.url`, `cache.url`) becomes `[redacted]`.
 */
export function redactConfig(config: Readonly<Config>): unknown {
  return JSON.parse(JSON.stringify(config, (key: string, value: unknown) => {
    if (value === undefined) return value;
    if (SECRET_KEYS.has(key)) return '[redacted]';
    return typeof value === 'string' ? redactUrlPassword(value) : value;
  }));
}

/** A string that is a URL with a password (user info or a `password` query parameter) loses it; anything else is unchanged. */
export function redactUrlPassword(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(value) && !/^[a-z][a-z0-9+.-]*:\/\/.*[?&]password=/i.test(value)) return value;
  return redactUrl(value);
}
