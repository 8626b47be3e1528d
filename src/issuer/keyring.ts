import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import type { Clock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import type { SigningKeyRecord, Store } from '../store/index.js';
import type { KeySource, VerifyKey } from '../tokens/key_source.js';
import { matchingKeys } from '../tokens/match_keys.js';
import type { Kek } from './kek.js';
import { signJws, signingKeyObject, type SigningAlg } from './jws.js';

export type { SigningAlg } from './jws.js';

export interface KeyringOptions {
  store: Store;
  kek: Kek;
  clock: Clock;
  alg: SigningAlg;
  /** A new key is published this long before it signs. */
  prepublishMs: number;
  /** The longest lifetime of anything signed (access and ID tokens): how long a superseded key stays published. */
  maxTokenLifetimeMs: number;
}

export interface KeyState {
  kid: string;
  alg: string;
  /** `superseded`: a pending key replaced before it activated; published until it retires, never signs. */
  state: 'pending' | 'active' | 'previous' | 'superseded' | 'retired';
  createdAt: number;
  activatesAt: number;
  retiresAt: number | null;
}

export interface Signer {
  kid: string;
  alg: SigningAlg;
  /** A compact JWS of `payload` with this key (`alg` and `kid` are set in the header). */
  sign(header: Record<string, unknown>, payload: Record<string, unknown>): string;
}

/**
 * The token module's signing keys. All keys live in the store (private halves encrypted under
 * the KEK); this holds the published set and the current signer in memory. A rotation publishes
 * the new key `prepublishMs` before it signs and keeps the previous one published until every
 * token it signed has expired. `keySource` lets the ext_authz verifier trust these keys in-process.
 */
export interface Keyring {
  /** Creates the first key when the store has none that can sign; then loads. */
  /** Loads the keys; creates the first one when none can sign. Returns its kid when it created one. */
  init(): Promise<string | undefined>;
  /** Re-reads keys from the store (SIGHUP, timer, other replicas' rotations). */
  reload(): Promise<void>;
  /**
   * `immediate`: the new key signs at once. `revokePrevious` (after a key compromise): every
   * earlier key leaves the JWKS and the in-process verifier now, so tokens it signed stop working.
   */
  rotate(options?: { immediate?: boolean; revokePrevious?: boolean }): Promise<KeyState>;
  /** True when the newest key is older than `intervalMs` (a scheduled rotation is due). */
  rotationDue(intervalMs: number): boolean;
  signer(): Promise<Signer>;
  jwks(): JSONWebKeySet;
  /** The keys in the JWKS with their retirement times (what cluster workers verify against). */
  published(): Array<{ jwk: JWK; retiresAt: number | null }>;
  /** Calls `listener` after every re-read of the keys (rotation, reload, another replica's key). */
  onChange(listener: () => void): void;
  states(): KeyState[];
  readonly keySource: KeySource;
}

const PURPOSE = 'signing-key';

export function createKeyring(o: KeyringOptions): Keyring {
  let records: SigningKeyRecord[] = [];
  let published: JSONWebKeySet = { keys: [] };
  let localSet = createLocalJWKSet(published);
  const signers = new Map<string, Signer>();
  const listeners: Array<() => void> = [];

  const stateOf = (k: SigningKeyRecord, now: number, signerKid: string | undefined): KeyState['state'] =>
    k.retiresAt !== null && k.retiresAt <= now ? 'retired' : k.kid === signerKid ? 'active' : k.activatesAt > now ? (k.retiresAt !== null && k.retiresAt <= k.activatesAt ? 'superseded' : 'pending') : 'previous';

  function currentSigner(now: number): SigningKeyRecord | undefined {
    let best: SigningKeyRecord | undefined;
    for (const k of records) {
      if (k.activatesAt > now || (k.retiresAt !== null && k.retiresAt <= now)) continue;
      // The store lists keys in activation, then creation order: on a tie the newer key wins.
      if (!best || k.activatesAt >= best.activatesAt) best = k;
    }
    return best;
  }

  let nextRetirement = Infinity;

  async function reload(): Promise<void> {
    records = await o.store.keys.list();
    rebuildPublished();
    for (const listener of listeners) listener();
  }

  function rebuildPublished(): void {
    const now = o.clock.now();
    const live = records.filter((k) => k.retiresAt === null || k.retiresAt > now);
    published = { keys: live.map((k) => k.publicJwk as JWK) };
    localSet = createLocalJWKSet(published);
    nextRetirement = Math.min(...live.map((k) => k.retiresAt ?? Infinity));
  }

  /** Drops a key from the published set once its retirement time passes (checked lazily). */
  function refreshPublished(): void {
    if (o.clock.now() >= nextRetirement) rebuildPublished();
  }

  async function newKey(activatesAt: number): Promise<SigningKeyRecord> {
    const { privateKey } = await generateKeyPair(o.alg, { extractable: true, ...(o.alg === 'RS256' ? { modulusLength: 3072 } : {}) });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(jwk);
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
    return {
      kid,
      alg: o.alg,
      publicJwk: { ...pub, kid, alg: o.alg, use: 'sig' },
      privateCiphertext: o.kek.encrypt(JSON.stringify({ ...jwk, kid, alg: o.alg }), PURPOSE),
      createdAt: o.clock.now(),
      activatesAt,
      retiresAt: null,
    };
  }

  async function rotate({ immediate = false, revokePrevious = false } = {}): Promise<KeyState> {
    await reload();
    const now = o.clock.now();
    const next = await newKey(immediate || revokePrevious ? now : now + o.prepublishMs);
    const retiresAt = revokePrevious ? now : next.activatesAt + o.maxTokenLifetimeMs;
    const retiring = records.filter((k) => k.retiresAt === null || k.retiresAt > retiresAt).map((k) => ({ kid: k.kid, retiresAt }));
    await o.store.keys.rotate(retiring, next);
    await reload();
    return { kid: next.kid, alg: next.alg, state: immediate || revokePrevious ? 'active' : 'pending', createdAt: next.createdAt, activatesAt: next.activatesAt, retiresAt: null };
  }

  const keySource: KeySource = {
    keysFor: (header: JWSHeaderParameters): Promise<VerifyKey[]> => {
      refreshPublished();
      return matchingKeys(localSet, header);
    },
    hasKeys: () => published.keys.length > 0,
    start: () => Promise.resolve(),
    stop() {},
  };

  return {
    async init() {
      await reload();
      if (currentSigner(o.clock.now())) return undefined;
      const key = await newKey(o.clock.now());
      await o.store.keys.insert(key);
      await reload();
      return key.kid;
    },
    reload,
    rotate,
    rotationDue(intervalMs) {
      const newest = records.reduce((m, k) => Math.max(m, k.createdAt), 0);
      return intervalMs > 0 && o.clock.now() - newest >= intervalMs;
    },
    async signer() {
      const now = o.clock.now();
      const record = currentSigner(now);
      if (!record) throw new PortcullisError('ERR_KEYS_UNAVAILABLE', 'no signing key is active');
      let signer = signers.get(record.kid);
      if (!signer) {
        const alg = record.alg as SigningAlg;
        const key = signingKeyObject(JSON.parse(o.kek.decrypt(record.privateCiphertext, PURPOSE)) as JWK, alg);
        const kid = record.kid;
        signer = { kid, alg, sign: (header, payload) => signJws(alg, key, header, payload, kid) };
        signers.set(kid, signer);
      }
      return signer;
    },
    jwks: () => {
      refreshPublished();
      return published;
    },
    published: () => {
      const now = o.clock.now();
      return records.filter((k) => k.retiresAt === null || k.retiresAt > now).map((k) => ({ jwk: k.publicJwk as JWK, retiresAt: k.retiresAt }));
    },
    onChange(listener) {
      listeners.push(listener);
    },
    states: () => {
      const now = o.clock.now();
      const signerKid = currentSigner(now)?.kid;
      return records.map((k) => ({ kid: k.kid, alg: k.alg, state: stateOf(k, now, signerKid), createdAt: k.createdAt, activatesAt: k.activatesAt, retiresAt: k.retiresAt }));
    },
    keySource,
  };
}
