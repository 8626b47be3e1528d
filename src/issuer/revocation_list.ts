import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';

/**
 * Revoked access-token ids, held in memory so the ext_authz path checks them without I/O.
 * Filled from the store at start and on reload; revocations in this process apply at once.
 */
export interface RevocationList {
  has(jti: string): boolean;
  revoke(jti: string, expiresAtMs: number): Promise<void>;
  reload(): Promise<void>;
}

export function createRevocationList(store: Store, clock: Clock): RevocationList {
  let set = new Set<string>();
  /** Revocations made while a reload's query runs: kept, not lost when the set is replaced. */
  let during: Set<string> | undefined;
  return {
    has: (jti) => set.has(jti),
    async revoke(jti, expiresAtMs) {
      set.add(jti);
      during?.add(jti);
      await store.revocations.revoke(jti, expiresAtMs);
    },
    async reload() {
      during = new Set();
      try {
        const loaded = new Set(await store.revocations.active(clock.now()));
        for (const jti of during) loaded.add(jti);
        set = loaded;
      } finally {
        during = undefined;
      }
    },
  };
}
