import { errors, type JWSHeaderParameters, type createLocalJWKSet } from 'jose';
import { PortcullisError } from '../lib/errors.js';
import type { VerifyKey } from './key_source.js';

type LocalSet = ReturnType<typeof createLocalJWKSet>;

/**
 * Selects the keys of a local set that fit the header (kid, alg -> kty/crv, use).
 * Several keys can match a header without kid; the caller tries each.
 */
export async function matchingKeys(set: LocalSet, header: JWSHeaderParameters): Promise<VerifyKey[]> {
  try {
    return [await set(header)];
  } catch (err) {
    if (err instanceof errors.JWKSMultipleMatchingKeys) {
      const keys: VerifyKey[] = [];
      for await (const key of err as unknown as AsyncIterable<VerifyKey>) keys.push(key);
      return keys;
    }
    if (err instanceof errors.JWKSNoMatchingKey) throw new PortcullisError('ERR_TOKEN_KEY_NOT_FOUND', 'no key matches the token header', { cause: err });
    if (err instanceof errors.JOSENotSupported || err instanceof errors.JWKInvalid) {
      throw new PortcullisError('ERR_TOKEN_KEY_NOT_FOUND', 'matching key cannot be used', { cause: err });
    }
    throw err;
  }
}
