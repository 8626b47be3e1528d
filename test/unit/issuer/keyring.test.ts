import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKek } from '../../../src/issuer/kek.js';
import { createKeyring, type Keyring } from '../../../src/issuer/keyring.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { openMemoryStore, type Store } from '../../../src/store/index.js';

const MIN = 60_000;

describe('signing keyring', () => {
  let store: Store;
  let clock: ReturnType<typeof createManualClock>;
  const kek = createKek(randomBytes(32));
  const ring = (alg: 'ES256' | 'EdDSA' | 'RS256' = 'ES256'): Keyring => createKeyring({ store, kek, clock, alg, prepublishMs: 10 * MIN, maxTokenLifetimeMs: 5 * MIN });

  beforeEach(() => {
    store = openMemoryStore();
    clock = createManualClock();
  });
  afterEach(() => store.close());

  async function sign(k: Keyring): Promise<string> {
    const s = await k.signer();
    return s.sign({}, { sub: 'u' });
  }
  const verifies = async (k: Keyring, jwt: string) => {
    try {
      await jwtVerify(jwt, async (h) => (await k.keySource.keysFor(h))[0]! as never);
      return true;
    } catch {
      return false;
    }
  };

  it('creates one active key on first start and keeps it across restarts', async () => {
    const a = ring();
    await a.init();
    expect(a.states()).toMatchObject([{ state: 'active', alg: 'ES256' }]);
    const b = ring();
    await b.init();
    expect(b.states().map((k) => k.kid)).toEqual(a.states().map((k) => k.kid));
    expect(a.jwks().keys[0]).not.toHaveProperty('d');
  });

  it('publishes a rotated key before it signs, then switches, then retires the old key after the longest token lifetime', async () => {
    const k = ring();
    await k.init();
    const oldKid = k.states()[0]!.kid;
    const oldToken = await sign(k);
    const next = await k.rotate();
    expect(next.state).toBe('pending');
    expect(k.jwks().keys.map((j) => j.kid)).toEqual([oldKid, next.kid]);
    expect(decodeProtectedHeader(await sign(k)).kid).toBe(oldKid);

    clock.advance(10 * MIN);
    expect(decodeProtectedHeader(await sign(k)).kid).toBe(next.kid);
    expect(await verifies(k, oldToken)).toBe(true);
    expect(k.states().find((s) => s.kid === oldKid)?.state).toBe('previous');

    clock.advance(5 * MIN);
    expect(k.jwks().keys.map((j) => j.kid)).toEqual([next.kid]);
    expect(await verifies(k, oldToken)).toBe(false);
    expect(k.states().find((s) => s.kid === oldKid)?.state).toBe('retired');
  });

  it('signs with the new key at once when the rotation is immediate', async () => {
    const k = ring('EdDSA');
    await k.init();
    const next = await k.rotate({ immediate: true });
    expect(next.state).toBe('active');
    expect(decodeProtectedHeader(await sign(k)).kid).toBe(next.kid);
  });

  it('marks a pending key replaced before it activated as superseded, never signing', async () => {
    const k = ring();
    await k.init();
    const pending = await k.rotate();
    const now = await k.rotate({ immediate: true });
    const states = Object.fromEntries(k.states().map((s) => [s.kid, s.state]));
    expect(states[pending.kid]).toBe('superseded');
    expect(states[now.kid]).toBe('active');
    clock.advance(10 * MIN);
    expect((await k.signer()).kid).toBe(now.kid);
  });

  it('sees a rotation made by another process after reload', async () => {
    const server = ring();
    await server.init();
    const cli = ring();
    await cli.init();
    const rotated = await cli.rotate({ immediate: true });
    expect(server.jwks().keys.map((j) => j.kid)).not.toContain(rotated.kid);
    await server.reload();
    expect(server.jwks().keys.map((j) => j.kid)).toContain(rotated.kid);
    expect((await server.signer()).kid).toBe(rotated.kid);
  });

  it('says when a scheduled rotation is due', async () => {
    const k = ring('RS256');
    await k.init();
    expect(k.rotationDue(60 * MIN)).toBe(false);
    expect(k.rotationDue(0)).toBe(false);
    clock.advance(60 * MIN);
    expect(k.rotationDue(60 * MIN)).toBe(true);
  });
});
