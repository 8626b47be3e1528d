import type { CedarValueJson } from '../policy/index.js';

const MAX_DEPTH = 4;

/**
 * A JSON value (token claim, context extension) as a plain Cedar value. Keys starting with `__`
 * are dropped so untrusted input can never smuggle in `__entity` or `__extn` escapes; values
 * Cedar cannot hold (null, fractions, numbers outside i64) are dropped.
 */
export function toCedarValue(value: unknown, depth = 0): CedarValueJson | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isSafeInteger(value) ? value : undefined;
    case 'object': {
      if (value === null || depth >= MAX_DEPTH) return undefined;
      if (Array.isArray(value)) {
        const out: CedarValueJson[] = [];
        for (const v of value) {
          const c = toCedarValue(v, depth + 1);
          if (c !== undefined) out.push(c);
        }
        return out;
      }
      return toCedarRecord(value as Record<string, unknown>, depth + 1);
    }
    default:
      return undefined;
  }
}

export function toCedarRecord(obj: Readonly<Record<string, unknown>>, depth = 0, only?: ReadonlySet<string>): Record<string, CedarValueJson> {
  const out: Record<string, CedarValueJson> = {};
  for (const key of Object.keys(obj)) {
    if (key.startsWith('__') || (only && !only.has(key))) continue;
    const c = toCedarValue(obj[key], depth);
    if (c !== undefined) out[key] = c;
  }
  return out;
}
