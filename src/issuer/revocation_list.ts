import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';

/**
 * Revoked access-token ids, held in memory so the ext_authz path checks them without I/O.
 * Filled from the store at start and on reload; revocations in this process apply at once, and
 * those of other replicas as soon as their fan-out message arrives (`learn`).
 */
export interface RevocationList {
  has(jti: string): boolean;
  /** Records the revocation in the store, holds it here, then tells the other replicas (`notify`). */
  revoke(jti: string, expiresAtMs: number): Promise<void>;
  /** Another replica revoked `jti`: held once the store confirms it (a message alone revokes nothing). */
  learn(jti: string): Promise<void>;
  reload(): Promise<void>;
  /** Every revoked id held (what a new cluster worker starts from). */
  list(): string[];
  /** Calls `listener` with ids just revoked, or with the whole list after a reload (`full`). */
  onChange(listener: (jtis: string[], full: boolean) => void): void;
}

export function createRevocationList(store: Store, clock: Clock, notify: (jti: string) => Promise<void> = async () => {}): RevocationList {
  let set = new Set<string>();
  /** Revocations made while a reload's query runs: kept, not lost when the set is replaced. */
  let during: Set<string> | undefined;
  const listeners: Array<(jtis: string[], full: boolean) => void> = [];
  const tell = (jtis: string[], full: boolean) => {
    for (const listener of listeners) listener(jtis, full);
  };
  return {
    has: (jti) => set.has(jti),
    async revoke(jti, expiresAtMs) {
      set.add(jti);
      during?.add(jti);
      tell([jti], false);
      await store.revocations.revoke(jti, expiresAtMs);
      await notify(jti);
    },
    async learn(jti) {
      if (set.has(jti) || !(await store.revocations.isRevoked(jti))) return;
      set.add(jti);
      during?.add(jti);
      tell([jti], false);
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
      tell([...set], true);
    },
    list: () => [...set],
    onChange(listener) {
      listeners.push(listener);
    },
  };
}
