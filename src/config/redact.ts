import type { Config } from './schema.js';

/** Keys whose values are secrets: shown as set, never printed. */
const SECRET_KEYS = new Set(['api_key', 'kek', 'client_secret']);

/**
 * The configuration as it may be printed (`config check`): secret keys become `[redacted]` and
 * the password of any URL with credentials (`cache.url`, `redis://:secret@host`) becomes `***`.
 */
export function redactConfig(config: Readonly<Config>): unknown {
  return JSON.parse(JSON.stringify(config, (key: string, value: unknown) => {
    if (value === undefined) return value;
    if (SECRET_KEYS.has(key)) return '[redacted]';
    return typeof value === 'string' ? redactUrlPassword(value) : value;
  }));
}

/** `scheme://user:secret@host/…` → `scheme://user:***@host/…`; anything else unchanged. */
export function redactUrlPassword(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(value)) return value;
  try {
    const url = new URL(value);
    if (!url.password) return value;
    url.password = '***';
    return url.toString();
  } catch {
    // Not parseable as a URL, yet shaped like one with credentials: hide everything before '@'.
    return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1***@');
  }
}
