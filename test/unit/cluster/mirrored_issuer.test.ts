import { randomBytes } from 'node:crypto';
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMirroredIssuer } from '../../../src/cluster/mirrored_issuer.js';
import { createKek } from '../../../src/issuer/kek.js';
import { createKeyring, type Keyring } from '../../../src/issuer/keyring.js';
import { createRevocationList } from '../../../src/issuer/revocation_list.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { openMemoryStore, type Store } from '../../../src/store/index.js';

const MIN = 60_000;
const POLICY = { issuer: 'http://auth.test', audiences: ['api'], algorithms: ['ES256'], clock_skew_seconds: 30, roles_claim: 'roles', scope_claim: 'scope' };

/** What a cluster worker trusts, fed exactly as the primary feeds it: from a real keyring and revocation list. */
describe('mirrored issuer (cluster worker side)', () => {
  let store: Store;
  let clock: ReturnType<typeof createManualClock>;
  let ring: Keyring;

  beforeEach(async () => {
    store = openMemoryStore();
    clock = createManualClock();
    ring = createKeyring({ store, kek: createKek(randomBytes(32)), clock, alg: 'ES256', prepublishMs: 10 * MIN, maxTokenLifetimeMs: 5 * MIN });
    await ring.init();
  });
  afterEach(() => store.close());

  const sign = async () => (await ring.signer()).sign({}, { sub: 'u' });
  const verifies = async (source: ReturnType<typeof createMirroredIssuer>, jwt: string) => {
    try {
      await jwtVerify(jwt, async (h) => (await source.issuer.keys.keysFor(h))[0]! as never, { currentDate: new Date(clock.now()) });
      return true;
    } catch {
      return false;
    }
  };

  it('verifies with the keys it was sent, learns rotations from onChange, and drops a key at its retirement time without a new message', async () => {
    const mirrored = createMirroredIssuer({ policy: POLICY, keys: ring.published(), revoked: [] }, clock);
    ring.onChange(() => mirrored.setKeys(ring.published()));
    const before = await sign();
    expect(await verifies(mirrored, before)).toBe(true);
    await ring.rotate({ immediate: true });
    const after = await sign();
    expect(await verifies(mirrored, after)).toBe(true);
    // The previous key stays until every token it signed has expired (maxTokenLifetime), then goes.
    expect(await verifies(mirrored, before)).toBe(true);
    clock.advance(5 * MIN + 1);
    expect(await verifies(mirrored, before)).toBe(false);
    expect(await verifies(mirrored, after)).toBe(true);
    expect(mirrored.issuer.keys.hasKeys()).toBe(true);
  });

  it('holds revocations as they happen and replaces them with the full list on reload', async () => {
    const list = createRevocationList(store, clock);
    await list.revoke('seed', clock.now() + MIN);
    const mirrored = createMirroredIssuer({ policy: POLICY, keys: [], revoked: list.list() }, clock);
    list.onChange((jtis, full) => mirrored.revoke(jtis, full));
    expect(mirrored.issuer.isRevoked!('seed')).toBe(true);
    await list.revoke('j1', clock.now() + MIN);
    expect(mirrored.issuer.isRevoked!('j1')).toBe(true);
    expect(mirrored.issuer.isRevoked!('j2')).toBe(false);
    // Expired revocations leave the store's active list; a reload sends the whole list again.
    clock.advance(2 * MIN);
    await list.reload();
    expect(mirrored.issuer.isRevoked!('j1')).toBe(false);
    expect(mirrored.issuer.keys.hasKeys()).toBe(false);
  });
});
