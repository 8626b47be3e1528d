import { LimitExceeded } from '../lib/limits.js';

/** Limits a checked request must stay within (config `limits`). */
export interface RequestLimits {
  maxHeaderCount: number;
  maxHeaderBytes: number;
  /** Entities one decision may be evaluated with, and one app API call may supply. */
  maxEntities: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxHeaderCount: 200, maxHeaderBytes: 64 * 1024, maxEntities: 5000 };

/** The headers over their count or total size (names and values, UTF-8 bytes), or undefined. */
export function headerLimitExceeded(headers: ReadonlyMap<string, readonly string[]>, limits: RequestLimits): LimitExceeded | undefined {
  let count = 0;
  let bytes = 0;
  for (const [name, values] of headers) {
    count += values.length;
    for (const v of values) bytes += Buffer.byteLength(name) + Buffer.byteLength(v);
  }
  if (count > limits.maxHeaderCount) return new LimitExceeded('header_count', `request has ${count} headers, more than ${limits.maxHeaderCount}`);
  if (bytes > limits.maxHeaderBytes) return new LimitExceeded('header_bytes', `request headers hold ${bytes} bytes, more than ${limits.maxHeaderBytes}`);
  return undefined;
}

/** An entity set larger than the limit, or undefined. */
export function entityLimitExceeded(count: number, limits: RequestLimits, what = 'the request builds'): LimitExceeded | undefined {
  return count > limits.maxEntities ? new LimitExceeded('entities', `${what} ${count} entities, more than ${limits.maxEntities}`) : undefined;
}
