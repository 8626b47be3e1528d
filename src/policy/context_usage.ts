import type { PolicyJson } from './cedar.js';

/** `'all'` when a policy uses `context` as a whole (compares or passes the record itself). */
export type ContextKeys = ReadonlySet<string> | 'all';

/**
 * The context attributes a policy reads (`context.x`, `context has x`). Passing only these to
 * the engine is what keeps a decision cheap: cedar-wasm pays per context attribute per call.
 */
export function contextKeysOf(conditions: PolicyJson['conditions']): ContextKeys {
  const keys = new Set<string>();
  let all = false;
  const isContext = (n: unknown) => typeof n === 'object' && n !== null && (n as { Var?: unknown }).Var === 'context';
  const walk = (node: unknown): void => {
    if (all || typeof node !== 'object' || node === null) return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    const obj = node as Record<string, unknown>;
    const access = (obj['.'] ?? obj['has']) as { left?: unknown; attr?: unknown } | undefined;
    if (access && isContext(access.left)) {
      const attr = Array.isArray(access.attr) ? access.attr[0] : access.attr;
      if (typeof attr === 'string') keys.add(attr);
      return;
    }
    if (isContext(obj)) {
      all = true;
      return;
    }
    for (const v of Object.values(obj)) walk(v);
  };
  walk(conditions);
  return all ? 'all' : keys;
}

export function unionContextKeys(list: readonly ContextKeys[]): ContextKeys {
  const keys = new Set<string>();
  for (const k of list) {
    if (k === 'all') return 'all';
    for (const key of k) keys.add(key);
  }
  return keys;
}
