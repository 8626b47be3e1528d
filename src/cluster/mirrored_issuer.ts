import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import type { Clock } from '../lib/clock.js';
import type { KeySource, TrustedIssuer } from '../tokens/index.js';
import type { VerifyKey } from '../tokens/key_source.js';
import { matchingKeys } from '../tokens/match_keys.js';
import type { MirroredIssuer, MirroredKey } from './messages.js';

export interface MirroredTrustedIssuer {
  issuer: TrustedIssuer;
  /** The primary re-read its keys (rotation, retirement, another replica's new key). */
  setKeys(keys: readonly MirroredKey[]): void;
  /** Revoked access-token ids: the whole list (`full`) or ones just revoked. */
  revoke(jtis: readonly string[], full: boolean): void;
}

/**
 * The embedded token module as a worker sees it: the primary owns the store and the keyring and
 * sends the published keys and revoked token ids; the worker verifies against copies held in memory,
 * so a Check needs no IPC. A key leaves the set at its retirement time even between updates.
 */
export function createMirroredIssuer(initial: MirroredIssuer, clock: Clock): MirroredTrustedIssuer {
  let keys: readonly MirroredKey[] = [];
  let set = createLocalJWKSet({ keys: [] });
  let published: JSONWebKeySet = { keys: [] };
  let nextRetirement = Infinity;
  let revoked = new Set<string>();

  const rebuild = () => {
    const now = clock.now();
    const live = keys.filter((k) => k.retiresAt === null || k.retiresAt > now);
    published = { keys: live.map((k) => k.jwk) };
    set = createLocalJWKSet(published);
    nextRetirement = Math.min(...live.map((k) => k.retiresAt ?? Infinity));
  };
  const setKeys = (next: readonly MirroredKey[]) => {
    keys = next;
    rebuild();
  };
  setKeys(initial.keys);
  revoked = new Set(initial.revoked);

  const source: KeySource = {
    keysFor: (header: JWSHeaderParameters): Promise<VerifyKey[]> => {
      if (clock.now() >= nextRetirement) rebuild();
      return matchingKeys(set, header);
    },
    hasKeys: () => published.keys.length > 0,
    start: () => Promise.resolve(),
    stop() {},
  };
  return {
    issuer: { policy: initial.policy, keys: source, isRevoked: (jti) => revoked.has(jti) },
    setKeys,
    revoke(jtis, full) {
      if (full) revoked = new Set(jtis);
      else for (const jti of jtis) revoked.add(jti);
    },
  };
}
