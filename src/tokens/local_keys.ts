import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import type { KeySource, VerifyKey } from './key_source.js';
import { matchingKeys } from './match_keys.js';

/** Keys trusted in-process (the embedded issuer's own): no HTTP round trip. */
export function createLocalKeySource(jwks: JSONWebKeySet): KeySource {
  const set = createLocalJWKSet(jwks);
  return {
    keysFor: (header: JWSHeaderParameters): Promise<VerifyKey[]> => matchingKeys(set, header),
    hasKeys: () => jwks.keys.length > 0,
    start: () => Promise.resolve(),
    stop() {},
  };
}
