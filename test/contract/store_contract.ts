import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  AuditEvent,
  AuthorizationCodeRecord,
  ChallengeRecord,
  ClientRecord,
  NewExternalIdentity,
  NewUser,
  RefreshFamilyRecord,
  RefreshTokenRecord,
  SigningKeyRecord,
  Store,
  TotpEnrolment,
} from '../../src/store/index.js';

/**
 * The contract every `Store` adapter honours. It speaks only through the port, so the SQLite,
 * in-memory and PostgreSQL adapters all run the same cases. `open` must give a fresh,
 * empty store each time.
 */

const T0 = 1_700_000_000_000;
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const RACERS = 20;

const newUser = (id: string, over: Partial<NewUser> = {}): NewUser => ({
  id,
  username: id.replace(/^u-/, ''),
  roles: ['viewer'],
  passwordHash: `$argon2id$v=19$m=19456,t=2,p=1$salt$hash-of-${id}`,
  createdAt: T0,
  ...over,
});

const client = (clientId: string, over: Partial<ClientRecord> = {}): ClientRecord => ({
  clientId,
  name: `App ${clientId}`,
  type: 'confidential',
  authMethod: 'client_secret_basic',
  secretHash: `sha256:${clientId}-secret`,
  jwks: null,
  grantTypes: ['authorization_code', 'refresh_token'],
  redirectUris: ['https://app.example/callback'],
  scopes: ['openid', 'profile'],
  roles: [],
  firstParty: false,
  createdAt: T0,
  ...over,
});

const code = (codeHash: string, over: Partial<AuthorizationCodeRecord> = {}): AuthorizationCodeRecord => ({
  codeHash,
  clientId: 'app',
  userId: 'u-alice',
  redirectUri: 'https://app.example/callback',
  scope: 'openid profile',
  codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  nonce: 'n-0S6_WzA2Mj',
  resource: 'https://api.example',
  amr: ['pwd', 'otp'],
  authTime: T0,
  expiresAt: T0 + MINUTE,
  consumedAt: null,
  familyId: null,
  accessTokenJti: null,
  ...over,
});

const family = (id: string, over: Partial<RefreshFamilyRecord> = {}): RefreshFamilyRecord => ({
  id,
  clientId: 'app',
  userId: 'u-alice',
  scope: 'openid offline_access',
  resource: null,
  amr: ['pwd'],
  authTime: T0,
  createdAt: T0,
  absoluteExpiresAt: T0 + 30 * DAY,
  revokedAt: null,
  revokedReason: null,
  jkt: null,
  ...over,
});

const token = (tokenHash: string, familyId: string, over: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord => ({
  tokenHash,
  familyId,
  createdAt: T0,
  idleExpiresAt: T0 + DAY,
  consumedAt: null,
  ...over,
});

const key = (kid: string, over: Partial<SigningKeyRecord> = {}): SigningKeyRecord => ({
  kid,
  alg: 'ES256',
  publicJwk: { kty: 'EC', crv: 'P-256', x: `x-of-${kid}`, y: `y-of-${kid}`, kid, use: 'sig' },
  privateCiphertext: `kek:v1:${kid}`,
  createdAt: T0,
  activatesAt: T0,
  retiresAt: null,
  ...over,
});

const challenge = (idHash: string, over: Partial<ChallengeRecord> = {}): ChallengeRecord => ({
  idHash,
  kind: 'mfa',
  userId: 'u-alice',
  data: { returnTo: '/authorize?client_id=app', attempts: 0, nested: { amr: ['pwd'] } },
  expiresAt: T0 + 5 * MINUTE,
  consumedAt: null,
  ...over,
});

const event = (at: number, type: string, over: Partial<AuditEvent> = {}): AuditEvent => ({
  at,
  type,
  outcome: 'success',
  actor: 'hmac:3f1c',
  clientId: 'app',
  ip: '203.0.113.7',
  reason: null,
  details: {},
  ...over,
});

const enrolment = (userId: string, over: Partial<TotpEnrolment> = {}): TotpEnrolment => ({
  userId,
  secretCiphertext: `kek:v1:totp-${userId}`,
  createdAt: T0,
  lastStep: null,
  ...over,
});

/** Statuses of many simultaneous compare-and-set attempts. */
async function race<T extends { status: string }>(attempt: () => Promise<T>): Promise<string[]> {
  const results = await Promise.all(Array.from({ length: RACERS }, attempt));
  return results.map((r) => r.status);
}

const count = (xs: unknown[], x: unknown): number => xs.filter((y) => y === x).length;

export function describeStoreContract(name: string, open: () => Promise<Store> | Store): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('reports a schema version of at least 1', () => {
      expect(store.schemaVersion).toBeGreaterThanOrEqual(1);
    });

    describe('users', () => {
      it('creates a user and finds it by id and by username, with fresh counters', async () => {
        await store.users.create(newUser('u-alice', { name: 'Alice Liddell', email: 'alice@example.com', roles: ['admin', 'viewer'] }));
        const expected = {
          id: 'u-alice',
          username: 'alice',
          name: 'Alice Liddell',
          email: 'alice@example.com',
          roles: ['admin', 'viewer'],
          disabled: false,
          createdAt: T0,
          failedLogins: 0,
          lockedUntil: null,
        };
        expect(await store.users.byId('u-alice')).toEqual(expected);
        expect(await store.users.byUsername('alice')).toEqual(expected);
      });

      it('gives null name and email when none are given, and keeps an empty role list', async () => {
        await store.users.create(newUser('u-bob', { roles: [] }));
        expect(await store.users.byId('u-bob')).toMatchObject({ name: null, email: null, roles: [] });
      });

      it('finds nothing for an unknown id or username', async () => {
        await store.users.create(newUser('u-alice'));
        expect(await store.users.byId('u-nobody')).toBeUndefined();
        expect(await store.users.byUsername('nobody')).toBeUndefined();
        expect(await store.users.byUsername('u-alice')).toBeUndefined();
      });

      it('lists every user', async () => {
        expect(await store.users.list()).toEqual([]);
        await store.users.create(newUser('u-carol'));
        await store.users.create(newUser('u-alice'));
        await store.users.create(newUser('u-bob'));
        const users = await store.users.list();
        expect(users.map((u) => u.username).sort()).toEqual(['alice', 'bob', 'carol']);
        expect(users.find((u) => u.id === 'u-bob')).toEqual(await store.users.byId('u-bob'));
      });

      it('rejects a second user with a taken username and leaves the first untouched', async () => {
        await store.users.create(newUser('u-alice', { username: 'alice' }));
        await expect(store.users.create(newUser('u-impostor', { username: 'alice', passwordHash: 'impostor-hash' }))).rejects.toThrow();
        expect((await store.users.byUsername('alice'))?.id).toBe('u-alice');
        expect(await store.users.byId('u-impostor')).toBeUndefined();
        expect(await store.users.passwordHash('u-alice')).toBe(newUser('u-alice').passwordHash);
        expect(await store.users.passwordHash('u-impostor')).toBeUndefined();
        expect(await store.users.list()).toHaveLength(1);
      });

      it('rejects a second user with a taken id', async () => {
        await store.users.create(newUser('u-alice', { username: 'alice' }));
        await expect(store.users.create(newUser('u-alice', { username: 'alice2' }))).rejects.toThrow();
        expect(await store.users.byUsername('alice2')).toBeUndefined();
      });

      it('disables and re-enables a user, and reports false for an unknown one', async () => {
        await store.users.create(newUser('u-alice'));
        expect(await store.users.setDisabled('u-alice', true)).toBe(true);
        expect((await store.users.byId('u-alice'))?.disabled).toBe(true);
        expect(await store.users.setDisabled('u-alice', false)).toBe(true);
        expect((await store.users.byId('u-alice'))?.disabled).toBe(false);
        expect(await store.users.setDisabled('u-nobody', true)).toBe(false);
      });

      it('replaces the roles of a user, and reports false for an unknown one', async () => {
        await store.users.create(newUser('u-alice', { roles: ['viewer'] }));
        expect(await store.users.setRoles('u-alice', ['admin', 'editor'])).toBe(true);
        expect((await store.users.byId('u-alice'))?.roles).toEqual(['admin', 'editor']);
        expect(await store.users.setRoles('u-alice', [])).toBe(true);
        expect((await store.users.byId('u-alice'))?.roles).toEqual([]);
        expect(await store.users.setRoles('u-nobody', ['admin'])).toBe(false);
      });

      it('keeps the password hash given at creation and replaces it on request', async () => {
        await store.users.create(newUser('u-alice', { passwordHash: 'hash-1' }));
        await store.users.create(newUser('u-bob', { passwordHash: 'hash-bob' }));
        expect(await store.users.passwordHash('u-alice')).toBe('hash-1');
        expect(await store.users.setPasswordHash('u-alice', 'hash-2')).toBe(true);
        expect(await store.users.passwordHash('u-alice')).toBe('hash-2');
        expect(await store.users.passwordHash('u-bob')).toBe('hash-bob');
      });

      it('has no password hash for an unknown user and cannot set one', async () => {
        expect(await store.users.passwordHash('u-nobody')).toBeUndefined();
        expect(await store.users.setPasswordHash('u-nobody', 'hash')).toBe(false);
        expect(await store.users.passwordHash('u-nobody')).toBeUndefined();
      });

      it('creates a user without a password, who has no hash until one is set', async () => {
        await store.users.create(newUser('u-ext', { passwordHash: null }));
        expect(await store.users.byId('u-ext')).toMatchObject({ id: 'u-ext', username: 'ext' });
        expect(await store.users.passwordHash('u-ext')).toBeUndefined();
        expect(await store.users.setPasswordHash('u-ext', 'hash-later')).toBe(true);
        expect(await store.users.passwordHash('u-ext')).toBe('hash-later');
        expect(await store.users.setPasswordHash('u-ext', 'hash-again')).toBe(true);
        expect(await store.users.passwordHash('u-ext')).toBe('hash-again');
      });

      it('finds users by email whatever the case, oldest first, and nobody for an unknown email', async () => {
        await store.users.create(newUser('u-alice', { email: 'Alice@Example.com', createdAt: T0 + SECOND }));
        await store.users.create(newUser('u-alias', { email: 'alice@example.com', createdAt: T0 }));
        await store.users.create(newUser('u-bob', { email: 'bob@example.com' }));
        await store.users.create(newUser('u-none'));
        expect((await store.users.byEmail('ALICE@example.COM')).map((u) => u.id)).toEqual(['u-alias', 'u-alice']);
        expect(await store.users.byEmail('bob@example.com')).toEqual([await store.users.byId('u-bob')]);
        expect(await store.users.byEmail('carol@example.com')).toEqual([]);
      });

      it('counts each reserved attempt and stores the lock the caller computes from the new count', async () => {
        await store.users.create(newUser('u-alice'));
        const seen: number[] = [];
        const lockFor = (failures: number): number | null => {
          seen.push(failures);
          return failures >= 3 ? T0 + 15 * MINUTE : null;
        };
        expect(await store.users.reserveAttempt('u-alice', T0, lockFor)).toEqual({ allowed: true, failures: 1, lockedUntil: null, previousLockedUntil: null });
        expect(await store.users.reserveAttempt('u-alice', T0, lockFor)).toEqual({ allowed: true, failures: 2, lockedUntil: null, previousLockedUntil: null });
        expect(await store.users.byId('u-alice')).toMatchObject({ failedLogins: 2, lockedUntil: null });
        expect(await store.users.reserveAttempt('u-alice', T0, lockFor)).toEqual({ allowed: true, failures: 3, lockedUntil: T0 + 15 * MINUTE, previousLockedUntil: null });
        expect(seen).toEqual([1, 2, 3]);
        expect(await store.users.byId('u-alice')).toMatchObject({ failedLogins: 3, lockedUntil: T0 + 15 * MINUTE });
      });

      it('refuses attempts while locked, without counting them, and allows them again once the lock has passed', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.reserveAttempt('u-alice', T0, () => T0 + MINUTE);
        expect(await store.users.reserveAttempt('u-alice', T0 + SECOND, () => T0 + HOUR)).toEqual({ allowed: false, failures: 1, lockedUntil: T0 + MINUTE, previousLockedUntil: T0 + MINUTE });
        expect((await store.users.byId('u-alice'))?.failedLogins).toBe(1);
        expect(await store.users.reserveAttempt('u-alice', T0 + MINUTE, (n) => T0 + n * HOUR)).toEqual({ allowed: true, failures: 2, lockedUntil: T0 + 2 * HOUR, previousLockedUntil: T0 + MINUTE });
      });

      it('counts attempts per user and refuses an unknown user', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.create(newUser('u-bob'));
        await store.users.reserveAttempt('u-alice', T0, () => T0 + HOUR);
        expect(await store.users.byId('u-bob')).toMatchObject({ failedLogins: 0, lockedUntil: null });
        expect((await store.users.reserveAttempt('u-nobody', T0, () => null)).allowed).toBe(false);
      });

      it('lets no more simultaneous attempts through than the lock allows', async () => {
        await store.users.create(newUser('u-alice'));
        const results = await Promise.all(Array.from({ length: RACERS }, () => store.users.reserveAttempt('u-alice', T0, (n) => (n >= 3 ? T0 + HOUR : null))));
        expect(results.filter((r) => r.allowed).map((r) => r.failures).sort((a, b) => a - b)).toEqual([1, 2, 3]);
        expect(results.filter((r) => !r.allowed)).toHaveLength(RACERS - 3);
        expect((await store.users.byId('u-alice'))?.failedLogins).toBe(3);
      });

      it('gives one attempt back, restoring the lock it set unless another attempt replaced it', async () => {
        await store.users.create(newUser('u-alice'));
        const lockAt3 = (n: number) => (n >= 3 ? T0 + n * HOUR : null);
        await store.users.reserveAttempt('u-alice', T0, lockAt3);
        await store.users.reserveAttempt('u-alice', T0, lockAt3);
        const third = await store.users.reserveAttempt('u-alice', T0, lockAt3);
        expect(third.lockedUntil).toBe(T0 + 3 * HOUR);
        await store.users.releaseAttempt('u-alice', third);
        expect(await store.users.byId('u-alice')).toMatchObject({ failedLogins: 2, lockedUntil: null });
        const mine = await store.users.reserveAttempt('u-alice', T0, lockAt3);
        const theirs = await store.users.reserveAttempt('u-alice', T0 + 4 * HOUR, lockAt3);
        expect(theirs.lockedUntil).toBe(T0 + 4 * HOUR);
        await store.users.releaseAttempt('u-alice', mine);
        expect(await store.users.byId('u-alice')).toMatchObject({ failedLogins: 3, lockedUntil: T0 + 4 * HOUR });
      });

      it('resets the failure count and lifts the lock', async () => {
        await store.users.create(newUser('u-alice'));
        for (let i = 0; i < 5; i++) await store.users.reserveAttempt('u-alice', T0, () => T0 + HOUR);
        await store.users.resetFailures('u-alice');
        expect(await store.users.byId('u-alice')).toMatchObject({ failedLogins: 0, lockedUntil: null });
        expect((await store.users.reserveAttempt('u-alice', T0, () => null)).failures).toBe(1);
      });

      it('has no TOTP enrolment until one is set, then returns it unchanged', async () => {
        await store.users.create(newUser('u-alice'));
        expect(await store.users.totp('u-alice')).toBeUndefined();
        await store.users.setTotp(enrolment('u-alice'), ['backup-1', 'backup-2']);
        expect(await store.users.totp('u-alice')).toEqual(enrolment('u-alice'));
        expect(await store.users.totp('u-nobody')).toBeUndefined();
      });

      it('replaces the TOTP secret and all backup codes when enrolling again', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.setTotp(enrolment('u-alice', { secretCiphertext: 'old', lastStep: 40 }), ['old-1', 'old-2']);
        await store.users.setTotp(enrolment('u-alice', { secretCiphertext: 'new', createdAt: T0 + DAY }), ['new-1']);
        expect(await store.users.totp('u-alice')).toEqual({ userId: 'u-alice', secretCiphertext: 'new', createdAt: T0 + DAY, lastStep: null });
        expect(await store.users.consumeBackupCode('u-alice', 'old-1', T0)).toBe(false);
        expect(await store.users.consumeBackupCode('u-alice', 'old-2', T0)).toBe(false);
        expect(await store.users.consumeBackupCode('u-alice', 'new-1', T0)).toBe(true);
      });

      it('resets MFA: removes the enrolment and every backup code, and reports false when there was nothing', async () => {
        await store.users.create(newUser('u-alice'));
        expect(await store.users.resetMfa('u-alice')).toBe(false);
        await store.users.setTotp(enrolment('u-alice'), ['backup-1']);
        expect(await store.users.resetMfa('u-alice')).toBe(true);
        expect(await store.users.totp('u-alice')).toBeUndefined();
        expect(await store.users.consumeBackupCode('u-alice', 'backup-1', T0)).toBe(false);
        expect(await store.users.advanceTotpStep('u-alice', 1)).toBe(false);
        expect(await store.users.resetMfa('u-alice')).toBe(false);
      });

      it('accepts a TOTP step only when it is strictly later than the last accepted one', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.setTotp(enrolment('u-alice'), []);
        expect(await store.users.advanceTotpStep('u-alice', 56_666_666)).toBe(true);
        expect(await store.users.advanceTotpStep('u-alice', 56_666_666)).toBe(false);
        expect(await store.users.advanceTotpStep('u-alice', 56_666_665)).toBe(false);
        expect(await store.users.advanceTotpStep('u-alice', 56_666_667)).toBe(true);
        expect((await store.users.totp('u-alice'))?.lastStep).toBe(56_666_667);
      });

      it('treats the lastStep an enrolment starts with as already used', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.setTotp(enrolment('u-alice', { lastStep: 100 }), []);
        expect(await store.users.advanceTotpStep('u-alice', 100)).toBe(false);
        expect(await store.users.advanceTotpStep('u-alice', 101)).toBe(true);
      });

      it('accepts no TOTP step for a user without an enrolment', async () => {
        await store.users.create(newUser('u-alice'));
        expect(await store.users.advanceTotpStep('u-alice', 1)).toBe(false);
        expect(await store.users.advanceTotpStep('u-nobody', 1)).toBe(false);
      });

      it('lets exactly one of many simultaneous uses of the same TOTP step through', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.setTotp(enrolment('u-alice'), []);
        const wins = await Promise.all(Array.from({ length: RACERS }, () => store.users.advanceTotpStep('u-alice', 500)));
        expect(count(wins, true)).toBe(1);
      });

      it('consumes each backup code exactly once, and only for its own user', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.create(newUser('u-bob'));
        await store.users.setTotp(enrolment('u-alice'), ['code-a', 'code-b']);
        await store.users.setTotp(enrolment('u-bob'), ['code-c']);
        expect(await store.users.consumeBackupCode('u-bob', 'code-a', T0)).toBe(false);
        expect(await store.users.consumeBackupCode('u-alice', 'code-a', T0)).toBe(true);
        expect(await store.users.consumeBackupCode('u-alice', 'code-a', T0 + SECOND)).toBe(false);
        expect(await store.users.consumeBackupCode('u-alice', 'code-b', T0 + SECOND)).toBe(true);
        expect(await store.users.consumeBackupCode('u-alice', 'code-unknown', T0)).toBe(false);
        expect(await store.users.consumeBackupCode('u-alice', 'code-c', T0)).toBe(false);
        expect(await store.users.consumeBackupCode('u-bob', 'code-c', T0)).toBe(true);
      });

      it('lets exactly one of many simultaneous uses of a backup code through', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.setTotp(enrolment('u-alice'), ['code-a']);
        const wins = await Promise.all(Array.from({ length: RACERS }, () => store.users.consumeBackupCode('u-alice', 'code-a', T0)));
        expect(count(wins, true)).toBe(1);
      });
    });

    describe('clients', () => {
      const confidential = client('web', {
        authMethod: 'private_key_jwt',
        secretHash: null,
        jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'abc', y: 'def', kid: 'k1' }] },
        grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
        redirectUris: ['https://web.example/cb', 'https://web.example/cb2'],
        scopes: ['openid', 'profile', 'orders:read'],
        roles: ['service'],
        firstParty: true,
      });
      const publicClient = client('cli', { type: 'public', authMethod: 'none', secretHash: null, redirectUris: ['http://127.0.0.1/callback'] });

      it('stores clients and reads them back unchanged', async () => {
        await store.clients.create(confidential);
        await store.clients.create(publicClient);
        expect(await store.clients.byId('web')).toEqual(confidential);
        expect(await store.clients.byId('cli')).toEqual(publicClient);
        expect(await store.clients.byId('nobody')).toBeUndefined();
      });

      it('lists every client', async () => {
        expect(await store.clients.list()).toEqual([]);
        await store.clients.create(confidential);
        await store.clients.create(publicClient);
        await store.clients.create(client('svc', { grantTypes: ['client_credentials'], redirectUris: [] }));
        const list = await store.clients.list();
        expect(list.map((c) => c.clientId).sort()).toEqual(['cli', 'svc', 'web']);
        expect(list.find((c) => c.clientId === 'web')).toEqual(confidential);
      });

      it('rejects a second client with a taken id and keeps the first', async () => {
        await store.clients.create(confidential);
        await expect(store.clients.create(client('web', { name: 'Impostor' }))).rejects.toThrow();
        expect(await store.clients.byId('web')).toEqual(confidential);
      });

      it('removes a client once and reports false afterwards', async () => {
        await store.clients.create(confidential);
        await store.clients.create(publicClient);
        expect(await store.clients.remove('web')).toBe(true);
        expect(await store.clients.byId('web')).toBeUndefined();
        expect(await store.clients.remove('web')).toBe(false);
        expect((await store.clients.list()).map((c) => c.clientId)).toEqual(['cli']);
      });
    });

    describe('authorization codes', () => {
      it('consumes a saved code once: ok with the whole record and the consumption time', async () => {
        await store.codes.save(code('code-1'));
        expect(await store.codes.consume('code-1', T0 + SECOND)).toEqual({ status: 'ok', record: code('code-1', { consumedAt: T0 + SECOND }) });
      });

      it('keeps null nonce and resource as null', async () => {
        await store.codes.save(code('code-1', { nonce: null, resource: null, amr: [] }));
        expect(await store.codes.consume('code-1', T0)).toEqual({ status: 'ok', record: code('code-1', { nonce: null, resource: null, amr: [], consumedAt: T0 }) });
      });

      it('reports a second use as replayed, with the record as the first use left it', async () => {
        await store.codes.save(code('code-1'));
        await store.codes.consume('code-1', T0 + SECOND);
        expect(await store.codes.consume('code-1', T0 + 2 * SECOND)).toEqual({ status: 'replayed', record: code('code-1', { consumedAt: T0 + SECOND }) });
      });

      it('shows on a replay what the first use issued, so it can be revoked', async () => {
        await store.codes.save(code('code-1'));
        await store.codes.consume('code-1', T0 + SECOND);
        await store.codes.recordIssued('code-1', { familyId: 'fam-1', accessTokenJti: 'jti-1' });
        const replay = await store.codes.consume('code-1', T0 + 2 * SECOND);
        expect(replay.status).toBe('replayed');
        expect(replay.status !== 'unknown' && replay.record).toMatchObject({ familyId: 'fam-1', accessTokenJti: 'jti-1', consumedAt: T0 + SECOND });
      });

      it('hands a replay marked after the first issuance what it issued, and keeps recordIssued true', async () => {
        await store.codes.save(code('code-1'));
        await store.codes.consume('code-1', T0);
        expect(await store.codes.recordIssued('code-1', { familyId: 'fam-1', accessTokenJti: 'jti-1' })).toBe(true);
        expect(await store.codes.markReplayed('code-1', T0 + SECOND)).toEqual({ familyId: 'fam-1', accessTokenJti: 'jti-1' });
      });

      it('tells a first exchange still issuing that a replay came in between (recordIssued false)', async () => {
        await store.codes.save(code('code-1'));
        await store.codes.consume('code-1', T0);
        expect(await store.codes.markReplayed('code-1', T0 + SECOND)).toEqual({ familyId: null, accessTokenJti: null });
        expect(await store.codes.recordIssued('code-1', { familyId: 'fam-1', accessTokenJti: 'jti-1' })).toBe(false);
        expect(await store.codes.markReplayed('code-unknown', T0)).toBeUndefined();
      });

      it('records an issuance without a refresh family', async () => {
        await store.codes.save(code('code-1'));
        await store.codes.consume('code-1', T0);
        await store.codes.recordIssued('code-1', { familyId: null, accessTokenJti: 'jti-1' });
        const replay = await store.codes.consume('code-1', T0 + SECOND);
        expect(replay.status !== 'unknown' && replay.record).toMatchObject({ familyId: null, accessTokenJti: 'jti-1' });
      });

      it('reads a code without consuming it', async () => {
        await store.codes.save(code('code-1'));
        expect(await store.codes.lookup('code-1')).toEqual(code('code-1'));
        expect((await store.codes.consume('code-1', T0)).status).toBe('ok');
        expect((await store.codes.lookup('code-1'))?.consumedAt).toBe(T0);
        expect(await store.codes.lookup('code-2')).toBeUndefined();
      });

      it('reports an unknown code as unknown', async () => {
        await store.codes.save(code('code-1'));
        expect(await store.codes.consume('code-2', T0)).toEqual({ status: 'unknown' });
      });

      it('consumes each code independently', async () => {
        await store.codes.save(code('code-1'));
        await store.codes.save(code('code-2'));
        await store.codes.consume('code-1', T0);
        expect((await store.codes.consume('code-2', T0)).status).toBe('ok');
      });

      it('rejects saving a code hash twice', async () => {
        await store.codes.save(code('code-1'));
        await expect(store.codes.save(code('code-1', { clientId: 'other' }))).rejects.toThrow();
        const first = await store.codes.consume('code-1', T0);
        expect(first.status !== 'unknown' && first.record.clientId).toBe('app');
      });

      it('deletes the codes that expired before the given time, consumed or not, and counts them', async () => {
        await store.codes.save(code('old-unused', { expiresAt: T0 }));
        await store.codes.save(code('old-used', { expiresAt: T0 + SECOND }));
        await store.codes.save(code('live', { expiresAt: T0 + HOUR }));
        await store.codes.consume('old-used', T0);
        expect(await store.codes.deleteExpired(T0 + MINUTE)).toBe(2);
        expect(await store.codes.consume('old-unused', T0)).toEqual({ status: 'unknown' });
        expect(await store.codes.consume('old-used', T0)).toEqual({ status: 'unknown' });
        expect((await store.codes.consume('live', T0)).status).toBe('ok');
        expect(await store.codes.deleteExpired(T0 + MINUTE)).toBe(0);
      });

      it(`lets exactly one of ${RACERS} simultaneous uses of a code win`, async () => {
        await store.codes.save(code('code-1'));
        const statuses = await race(() => store.codes.consume('code-1', T0 + SECOND));
        expect(count(statuses, 'ok')).toBe(1);
        expect(count(statuses, 'replayed')).toBe(RACERS - 1);
      });
    });

    describe('refresh tokens', () => {
      it('creates a family with its first token and reads both back', async () => {
        await store.refresh.createFamily(family('fam-1', { resource: 'https://api.example', amr: ['pwd', 'otp'] }), token('rt-1', 'fam-1'));
        expect(await store.refresh.family('fam-1')).toEqual(family('fam-1', { resource: 'https://api.example', amr: ['pwd', 'otp'] }));
        expect(await store.refresh.lookup('rt-1')).toEqual({ token: token('rt-1', 'fam-1'), family: family('fam-1', { resource: 'https://api.example', amr: ['pwd', 'otp'] }) });
      });

      it('keeps a family without a user (client credentials)', async () => {
        await store.refresh.createFamily(family('fam-svc', { userId: null }), token('rt-1', 'fam-svc'));
        expect((await store.refresh.family('fam-svc'))?.userId).toBeNull();
      });

      it('keeps the DPoP key a family is bound to', async () => {
        const jkt = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
        await store.refresh.createFamily(family('fam-bound', { jkt }), token('rt-bound', 'fam-bound'));
        expect((await store.refresh.family('fam-bound'))?.jkt).toBe(jkt);
        expect((await store.refresh.lookup('rt-bound'))?.family.jkt).toBe(jkt);
        const spent = await store.refresh.consume('rt-bound', T0 + SECOND);
        expect(spent.status === 'ok' && spent.record.family.jkt).toBe(jkt);
      });

      it("revokes every live family of a user, or of a client, and nobody else's", async () => {
        await store.refresh.createFamily(family('fam-a1', { userId: 'u-alice', clientId: 'web' }), token('rt-a1', 'fam-a1'));
        await store.refresh.createFamily(family('fam-a2', { userId: 'u-alice', clientId: 'app' }), token('rt-a2', 'fam-a2'));
        await store.refresh.createFamily(family('fam-b1', { userId: 'u-bob', clientId: 'web' }), token('rt-b1', 'fam-b1'));
        await store.refresh.revokeFamily('fam-a2', T0, 'revoked');
        expect(await store.refresh.revokeUser('u-alice', T0 + SECOND, 'password_changed')).toBe(1);
        expect(await store.refresh.family('fam-a1')).toMatchObject({ revokedAt: T0 + SECOND, revokedReason: 'password_changed' });
        expect(await store.refresh.family('fam-a2')).toMatchObject({ revokedAt: T0, revokedReason: 'revoked' });
        expect((await store.refresh.lookup('rt-a1'))?.token.consumedAt).toBe(T0 + SECOND);
        expect((await store.refresh.family('fam-b1'))?.revokedAt).toBeNull();
        expect(await store.refresh.revokeClient('web', T0 + 2 * SECOND, 'client_removed')).toBe(1);
        expect(await store.refresh.family('fam-b1')).toMatchObject({ revokedAt: T0 + 2 * SECOND, revokedReason: 'client_removed' });
        expect(await store.refresh.revokeUser('u-nobody', T0, 'x')).toBe(0);
      });

      it('finds no unknown family or token', async () => {
        expect(await store.refresh.family('fam-nobody')).toBeUndefined();
        expect(await store.refresh.lookup('rt-nobody')).toBeUndefined();
      });

      it('consumes a token once: ok with the token and its family, then replayed as first consumed', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        expect(await store.refresh.consume('rt-1', T0 + SECOND)).toEqual({
          status: 'ok',
          record: { token: token('rt-1', 'fam-1', { consumedAt: T0 + SECOND }), family: family('fam-1') },
        });
        expect(await store.refresh.consume('rt-1', T0 + 2 * SECOND)).toEqual({
          status: 'replayed',
          record: { token: token('rt-1', 'fam-1', { consumedAt: T0 + SECOND }), family: family('fam-1') },
        });
      });

      it('reports an unknown token as unknown', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        expect(await store.refresh.consume('rt-2', T0)).toEqual({ status: 'unknown' });
      });

      it('looks a token up without consuming it', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await store.refresh.lookup('rt-1');
        expect((await store.refresh.consume('rt-1', T0)).status).toBe('ok');
        expect((await store.refresh.lookup('rt-1'))?.token.consumedAt).toBe(T0);
      });

      it('adds the rotated token to the family, usable once on its own', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await store.refresh.consume('rt-1', T0 + HOUR);
        await store.refresh.add(token('rt-2', 'fam-1', { createdAt: T0 + HOUR, idleExpiresAt: T0 + HOUR + DAY }));
        expect(await store.refresh.lookup('rt-2')).toEqual({ token: token('rt-2', 'fam-1', { createdAt: T0 + HOUR, idleExpiresAt: T0 + HOUR + DAY }), family: family('fam-1') });
        const second = await store.refresh.consume('rt-2', T0 + 2 * HOUR);
        expect(second).toEqual({ status: 'ok', record: { token: token('rt-2', 'fam-1', { createdAt: T0 + HOUR, idleExpiresAt: T0 + HOUR + DAY, consumedAt: T0 + 2 * HOUR }), family: family('fam-1') } });
        expect((await store.refresh.consume('rt-1', T0 + 3 * HOUR)).status).toBe('replayed');
      });

      it('revokes a family once, recording when and why, and marks every token in it consumed', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await store.refresh.consume('rt-1', T0 + SECOND);
        await store.refresh.add(token('rt-2', 'fam-1', { createdAt: T0 + SECOND }));
        expect(await store.refresh.revokeFamily('fam-1', T0 + MINUTE, 'refresh_token_reuse')).toBe(true);

        expect(await store.refresh.family('fam-1')).toEqual(family('fam-1', { revokedAt: T0 + MINUTE, revokedReason: 'refresh_token_reuse' }));
        expect((await store.refresh.lookup('rt-1'))?.token.consumedAt).toBe(T0 + SECOND);
        expect((await store.refresh.lookup('rt-2'))?.token.consumedAt).toBe(T0 + MINUTE);
        const afterRevoke = await store.refresh.consume('rt-2', T0 + 2 * MINUTE);
        expect(afterRevoke.status).toBe('replayed');
        expect(afterRevoke.status !== 'unknown' && afterRevoke.record.family.revokedAt).toBe(T0 + MINUTE);

        expect(await store.refresh.revokeFamily('fam-1', T0 + HOUR, 'admin')).toBe(false);
        expect(await store.refresh.family('fam-1')).toMatchObject({ revokedAt: T0 + MINUTE, revokedReason: 'refresh_token_reuse' });
      });

      it('reports false when revoking an unknown family', async () => {
        expect(await store.refresh.revokeFamily('fam-nobody', T0, 'admin')).toBe(false);
      });

      it('leaves other families alone when revoking one', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await store.refresh.createFamily(family('fam-2'), token('rt-2', 'fam-2'));
        await store.refresh.revokeFamily('fam-1', T0, 'logout');
        expect(await store.refresh.family('fam-2')).toEqual(family('fam-2'));
        expect((await store.refresh.consume('rt-2', T0)).status).toBe('ok');
      });

      it('creates no family when its first token cannot be stored', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await expect(store.refresh.createFamily(family('fam-2'), token('rt-1', 'fam-2'))).rejects.toThrow();
        expect(await store.refresh.family('fam-2')).toBeUndefined();
        expect((await store.refresh.lookup('rt-1'))?.family.id).toBe('fam-1');
      });

      it(`lets exactly one of ${RACERS} simultaneous refreshes with one token win`, async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        const statuses = await race(() => store.refresh.consume('rt-1', T0 + SECOND));
        expect(count(statuses, 'ok')).toBe(1);
        expect(count(statuses, 'replayed')).toBe(RACERS - 1);
      });

      it('rotates in one step: spends the token and stores its successor', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        const next = token('rt-2', 'fam-1', { createdAt: T0 + HOUR, idleExpiresAt: T0 + HOUR + DAY });
        expect(await store.refresh.rotate('rt-1', T0 + HOUR, next)).toEqual({ status: 'ok', record: { token: token('rt-1', 'fam-1', { consumedAt: T0 + HOUR }), family: family('fam-1') } });
        expect(await store.refresh.lookup('rt-2')).toEqual({ token: next, family: family('fam-1') });
        const again = await store.refresh.rotate('rt-1', T0 + 2 * HOUR, token('rt-3', 'fam-1'));
        expect(again).toEqual({ status: 'replayed', record: { token: token('rt-1', 'fam-1', { consumedAt: T0 + HOUR }), family: family('fam-1') } });
        expect(await store.refresh.lookup('rt-3')).toBeUndefined();
        expect((await store.refresh.rotate('rt-2', T0 + 2 * HOUR, token('rt-3', 'fam-1'))).status).toBe('ok');
        expect((await store.refresh.lookup('rt-3'))?.token.consumedAt).toBeNull();
      });

      it('spends the token but stores no successor when the family is revoked or expired, or the token idle-expired', async () => {
        await store.refresh.createFamily(family('fam-revoked'), token('rt-r', 'fam-revoked'));
        await store.refresh.revokeFamily('fam-revoked', T0, 'logout');
        const revoked = await store.refresh.rotate('rt-r', T0 + SECOND, token('rt-r2', 'fam-revoked'));
        expect(revoked.status !== 'unknown' && revoked.record.family.revokedAt).toBe(T0);
        await store.refresh.createFamily(family('fam-old', { absoluteExpiresAt: T0 + HOUR }), token('rt-o', 'fam-old', { idleExpiresAt: T0 + DAY }));
        expect((await store.refresh.rotate('rt-o', T0 + HOUR, token('rt-o2', 'fam-old'))).status).toBe('ok');
        await store.refresh.createFamily(family('fam-idle'), token('rt-i', 'fam-idle', { idleExpiresAt: T0 + MINUTE }));
        expect((await store.refresh.rotate('rt-i', T0 + MINUTE, token('rt-i2', 'fam-idle'))).status).toBe('ok');
        for (const hash of ['rt-r2', 'rt-o2', 'rt-i2']) expect(await store.refresh.lookup(hash)).toBeUndefined();
        expect((await store.refresh.lookup('rt-o'))?.token.consumedAt).toBe(T0 + HOUR);
        expect((await store.refresh.lookup('rt-i'))?.token.consumedAt).toBe(T0 + MINUTE);
      });

      it('rotates neither an unknown token nor one of another family', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await store.refresh.createFamily(family('fam-2'), token('rt-2', 'fam-2'));
        expect(await store.refresh.rotate('rt-nobody', T0, token('rt-x', 'fam-1'))).toEqual({ status: 'unknown' });
        expect(await store.refresh.rotate('rt-2', T0, token('rt-y', 'fam-1'))).toEqual({ status: 'unknown' });
        expect((await store.refresh.lookup('rt-2'))?.token.consumedAt).toBeNull();
        for (const hash of ['rt-x', 'rt-y']) expect(await store.refresh.lookup(hash)).toBeUndefined();
      });

      it('rotates all or nothing: when the successor cannot be stored the presented token stays unspent', async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        await store.refresh.createFamily(family('fam-2'), token('rt-2', 'fam-2'));
        await expect(store.refresh.rotate('rt-1', T0, token('rt-2', 'fam-1'))).rejects.toThrow();
        expect((await store.refresh.lookup('rt-1'))?.token.consumedAt).toBeNull();
        expect((await store.refresh.rotate('rt-1', T0, token('rt-3', 'fam-1'))).status).toBe('ok');
      });

      it(`lets exactly one of ${RACERS} simultaneous rotations of one token win and store its successor`, async () => {
        await store.refresh.createFamily(family('fam-1'), token('rt-1', 'fam-1'));
        let n = 0;
        const statuses = await race(() => store.refresh.rotate('rt-1', T0 + SECOND, token(`rt-next-${++n}`, 'fam-1')));
        expect(count(statuses, 'ok')).toBe(1);
        expect(count(statuses, 'replayed')).toBe(RACERS - 1);
        const successors = await Promise.all(Array.from({ length: RACERS }, (_, i) => store.refresh.lookup(`rt-next-${i + 1}`)));
        expect(successors.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('signing keys', () => {
      it('stores keys and reads them back unchanged', async () => {
        const current = key('k1');
        const retired = key('k0', { alg: 'RS256', publicJwk: { kty: 'RSA', n: 'modulus', e: 'AQAB', kid: 'k0' }, createdAt: T0 - DAY, activatesAt: T0 - DAY, retiresAt: T0 + DAY });
        expect(await store.keys.list()).toEqual([]);
        await store.keys.insert(current);
        await store.keys.insert(retired);
        expect(await store.keys.list()).toEqual([retired, current]);
      });

      it('lists keys by activation time, oldest first, whatever the insertion order', async () => {
        await store.keys.insert(key('k3', { createdAt: T0 + DAY, activatesAt: T0 + 2 * DAY }));
        await store.keys.insert(key('k1', { activatesAt: T0 }));
        await store.keys.insert(key('k2', { createdAt: T0 + HOUR, activatesAt: T0 + DAY }));
        expect((await store.keys.list()).map((k) => k.kid)).toEqual(['k1', 'k2', 'k3']);
      });

      it('rejects a second key with a taken kid', async () => {
        await store.keys.insert(key('k1'));
        await expect(store.keys.insert(key('k1', { alg: 'RS256' }))).rejects.toThrow();
        expect(await store.keys.list()).toEqual([key('k1')]);
      });

      it('sets when a key retires', async () => {
        await store.keys.insert(key('k1'));
        await store.keys.insert(key('k2', { activatesAt: T0 + HOUR }));
        await store.keys.setRetiresAt('k1', T0 + 7 * DAY);
        expect(await store.keys.list()).toEqual([key('k1', { retiresAt: T0 + 7 * DAY }), key('k2', { activatesAt: T0 + HOUR })]);
      });

      it('rotates: retires the named keys and inserts the next one', async () => {
        await store.keys.insert(key('k1'));
        await store.keys.insert(key('k2', { activatesAt: T0 + HOUR }));
        const next = key('k3', { createdAt: T0 + DAY, activatesAt: T0 + DAY + HOUR });
        await store.keys.rotate(
          [
            { kid: 'k1', retiresAt: T0 + 2 * DAY },
            { kid: 'k2', retiresAt: T0 + 3 * DAY },
          ],
          next,
        );
        expect(await store.keys.list()).toEqual([key('k1', { retiresAt: T0 + 2 * DAY }), key('k2', { activatesAt: T0 + HOUR, retiresAt: T0 + 3 * DAY }), next]);
      });

      it('rotates all or nothing: when the new key cannot be stored no key is retired', async () => {
        await store.keys.insert(key('k1'));
        await store.keys.insert(key('k2', { activatesAt: T0 + HOUR }));
        await expect(store.keys.rotate([{ kid: 'k2', retiresAt: T0 + DAY }], key('k1', { alg: 'RS256' }))).rejects.toThrow();
        expect(await store.keys.list()).toEqual([key('k1'), key('k2', { activatesAt: T0 + HOUR })]);
      });
    });

    describe('challenges', () => {
      it('saves a challenge and gets it back unchanged', async () => {
        await store.challenges.save(challenge('ch-1'));
        await store.challenges.save(challenge('ch-2', { kind: 'interaction', userId: null, data: {} }));
        expect(await store.challenges.get('ch-1')).toEqual(challenge('ch-1'));
        expect(await store.challenges.get('ch-2')).toEqual(challenge('ch-2', { kind: 'interaction', userId: null, data: {} }));
        expect(await store.challenges.get('ch-nobody')).toBeUndefined();
      });

      it('updates the user and data of a challenge', async () => {
        await store.challenges.save(challenge('ch-1', { kind: 'interaction', userId: null, data: { step: 'login' } }));
        await store.challenges.update('ch-1', 'u-alice', { step: 'consent', scopes: ['openid'] });
        expect(await store.challenges.get('ch-1')).toEqual(challenge('ch-1', { kind: 'interaction', userId: 'u-alice', data: { step: 'consent', scopes: ['openid'] } }));
      });

      it('consumes a challenge once: ok with the consumption time, then replayed, unknown for others', async () => {
        await store.challenges.save(challenge('ch-1'));
        expect(await store.challenges.consume('ch-1', T0 + SECOND)).toEqual({ status: 'ok', record: challenge('ch-1', { consumedAt: T0 + SECOND }) });
        expect(await store.challenges.consume('ch-1', T0 + 2 * SECOND)).toEqual({ status: 'replayed', record: challenge('ch-1', { consumedAt: T0 + SECOND }) });
        expect(await store.challenges.get('ch-1')).toEqual(challenge('ch-1', { consumedAt: T0 + SECOND }));
        expect(await store.challenges.consume('ch-nobody', T0)).toEqual({ status: 'unknown' });
      });

      it('no longer changes a challenge once it is consumed', async () => {
        await store.challenges.save(challenge('ch-1'));
        await store.challenges.consume('ch-1', T0);
        await store.challenges.update('ch-1', 'u-mallory', { hijacked: true });
        expect(await store.challenges.get('ch-1')).toEqual(challenge('ch-1', { consumedAt: T0 }));
      });

      it('deletes the challenges that expired before the given time and counts them', async () => {
        await store.challenges.save(challenge('ch-old', { expiresAt: T0 }));
        await store.challenges.save(challenge('ch-live', { expiresAt: T0 + HOUR }));
        expect(await store.challenges.deleteExpired(T0 + MINUTE)).toBe(1);
        expect(await store.challenges.get('ch-old')).toBeUndefined();
        expect(await store.challenges.get('ch-live')).toEqual(challenge('ch-live', { expiresAt: T0 + HOUR }));
      });

      it('accepts a one-time identifier once', async () => {
        expect(await store.challenges.useOnce('jti-1', T0 + MINUTE)).toBe(true);
        expect(await store.challenges.useOnce('jti-1', T0 + MINUTE)).toBe(false);
        expect(await store.challenges.useOnce('jti-1', T0 + HOUR)).toBe(false);
        expect(await store.challenges.useOnce('jti-2', T0 + MINUTE)).toBe(true);
      });

      it('forgets expired one-time identifiers on cleanup but remembers live ones', async () => {
        await store.challenges.useOnce('jti-old', T0);
        await store.challenges.useOnce('jti-live', T0 + HOUR);
        await store.challenges.deleteExpired(T0 + MINUTE);
        expect(await store.challenges.useOnce('jti-live', T0 + HOUR)).toBe(false);
        expect(await store.challenges.useOnce('jti-old', T0 + 2 * HOUR)).toBe(true);
      });

      it(`lets exactly one of ${RACERS} simultaneous uses of a challenge win`, async () => {
        await store.challenges.save(challenge('ch-1'));
        const statuses = await race(() => store.challenges.consume('ch-1', T0 + SECOND));
        expect(count(statuses, 'ok')).toBe(1);
        expect(count(statuses, 'replayed')).toBe(RACERS - 1);
      });

      it(`accepts exactly one of ${RACERS} simultaneous uses of a one-time identifier`, async () => {
        const wins = await Promise.all(Array.from({ length: RACERS }, () => store.challenges.useOnce('jti-1', T0 + MINUTE)));
        expect(count(wins, true)).toBe(1);
      });
    });

    describe('revocations', () => {
      it('knows a revoked access token and no other', async () => {
        await store.revocations.revoke('jti-1', T0 + HOUR);
        expect(await store.revocations.isRevoked('jti-1')).toBe(true);
        expect(await store.revocations.isRevoked('jti-2')).toBe(false);
      });

      it('lists the revoked tokens that have not expired yet', async () => {
        expect(await store.revocations.active(T0)).toEqual([]);
        await store.revocations.revoke('jti-expired', T0 - MINUTE);
        await store.revocations.revoke('jti-live-1', T0 + MINUTE);
        await store.revocations.revoke('jti-live-2', T0 + HOUR);
        expect((await store.revocations.active(T0)).sort()).toEqual(['jti-live-1', 'jti-live-2']);
        expect(await store.revocations.active(T0 + 2 * MINUTE)).toEqual(['jti-live-2']);
        expect(await store.revocations.active(T0 + 2 * HOUR)).toEqual([]);
      });

      it('accepts revoking the same token twice', async () => {
        await store.revocations.revoke('jti-1', T0 + HOUR);
        await store.revocations.revoke('jti-1', T0 + HOUR);
        expect(await store.revocations.isRevoked('jti-1')).toBe(true);
        expect(await store.revocations.active(T0)).toEqual(['jti-1']);
      });
    });

    describe('audit', () => {
      /** Appends five events one second apart: login ×3 (one failing), token.issued ×2. */
      async function appendFive(): Promise<AuditEvent[]> {
        const events = [
          event(T0, 'login', { details: { method: 'password' } }),
          event(T0 + SECOND, 'token.issued', { actor: null, details: { grant: 'client_credentials', scopes: ['a', 'b'] } }),
          event(T0 + 2 * SECOND, 'login', { outcome: 'failure', reason: 'bad_password', ip: null }),
          event(T0 + 3 * SECOND, 'token.issued', { clientId: null }),
          event(T0 + 4 * SECOND, 'login'),
        ];
        for (const e of events) await store.audit.append(e);
        return events;
      }

      it('returns appended events newest first, each with an id', async () => {
        expect(await store.audit.query({ limit: 10 })).toEqual([]);
        const events = await appendFive();
        const rows = await store.audit.query({ limit: 10 });
        expect(rows.map(({ id: _id, ...e }) => e)).toEqual([...events].reverse());
        const ids = rows.map((r) => r.id);
        expect(ids.every((id) => Number.isInteger(id))).toBe(true);
        expect([...ids].sort((a, b) => b - a)).toEqual(ids);
        expect(new Set(ids).size).toBe(ids.length);
      });

      it('returns at most limit events, the newest', async () => {
        await appendFive();
        expect((await store.audit.query({ limit: 2 })).map((r) => r.at)).toEqual([T0 + 4 * SECOND, T0 + 3 * SECOND]);
      });

      it('filters by type', async () => {
        await appendFive();
        const rows = await store.audit.query({ limit: 10, type: 'login' });
        expect(rows.map((r) => [r.at, r.outcome])).toEqual([
          [T0 + 4 * SECOND, 'success'],
          [T0 + 2 * SECOND, 'failure'],
          [T0, 'success'],
        ]);
        expect(await store.audit.query({ limit: 10, type: 'key.rotated' })).toEqual([]);
      });

      it('returns events at or after since', async () => {
        await appendFive();
        expect((await store.audit.query({ limit: 10, since: T0 + 3 * SECOND })).map((r) => r.at)).toEqual([T0 + 4 * SECOND, T0 + 3 * SECOND]);
        expect((await store.audit.query({ limit: 10, since: T0 + 2 * SECOND, type: 'token.issued' })).map((r) => r.at)).toEqual([T0 + 3 * SECOND]);
      });

      it('pages backwards with before, newest first, without gaps or repeats', async () => {
        const events = await appendFive();
        const seen: number[] = [];
        let before: number | undefined;
        for (;;) {
          const page = await store.audit.query({ limit: 2, before });
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(2);
          seen.push(...page.map((r) => r.at));
          before = page[page.length - 1]!.id;
        }
        expect(seen).toEqual(events.map((e) => e.at).reverse());
      });

      it('pages backwards within one type', async () => {
        await appendFive();
        const first = await store.audit.query({ limit: 2, type: 'login' });
        expect(first.map((r) => r.at)).toEqual([T0 + 4 * SECOND, T0 + 2 * SECOND]);
        const second = await store.audit.query({ limit: 2, type: 'login', before: first[1]!.id });
        expect(second.map((r) => r.at)).toEqual([T0]);
      });
    });

    describe('external identities', () => {
      const identity = (provider: string, subject: string, userId: string, over: Partial<NewExternalIdentity> = {}): NewExternalIdentity => ({ provider, subject, userId, email: `${subject}@idp.example`, createdAt: T0, ...over });
      const fresh = { needsReconsent: false, refreshTokenCiphertext: null, refreshTokenExpiresAt: null, tokenUpdatedAt: null };

      it('links an identity to a user and finds it by provider and subject, and by user', async () => {
        await store.users.create(newUser('u-alice'));
        expect(await store.identities.link(identity('corp', 'sub-1', 'u-alice'))).toBe(true);
        const expected = { ...identity('corp', 'sub-1', 'u-alice'), ...fresh };
        expect(await store.identities.find('corp', 'sub-1')).toEqual(expected);
        expect(await store.identities.forUser('u-alice')).toEqual([expected]);
      });

      it('finds nothing for another provider, another subject or a user without links', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.create(newUser('u-bob'));
        await store.identities.link(identity('corp', 'sub-1', 'u-alice'));
        expect(await store.identities.find('other', 'sub-1')).toBeUndefined();
        expect(await store.identities.find('corp', 'sub-2')).toBeUndefined();
        expect(await store.identities.forUser('u-bob')).toEqual([]);
      });

      it('keeps one user per identity and one identity per user and provider, lists a user\'s providers in order', async () => {
        await store.users.create(newUser('u-alice'));
        await store.users.create(newUser('u-bob'));
        expect(await store.identities.link(identity('corp', 'sub-1', 'u-alice'))).toBe(true);
        expect(await store.identities.link(identity('corp', 'sub-1', 'u-bob'))).toBe(false);
        expect(await store.identities.link(identity('corp', 'sub-2', 'u-alice'))).toBe(false);
        expect(await store.identities.link(identity('acme', 'sub-1', 'u-alice'))).toBe(true);
        expect((await store.identities.find('corp', 'sub-1'))?.userId).toBe('u-alice');
        expect((await store.identities.forUser('u-alice')).map((i) => i.provider)).toEqual(['acme', 'corp']);
        expect(await store.identities.forUser('u-bob')).toEqual([]);
      });

      it('provisions a user and its link together', async () => {
        const user = newUser('u-ext', { passwordHash: null, email: 'ext@idp.example', roles: ['viewer'] });
        expect(await store.identities.provision(user, { provider: 'corp', subject: 'sub-9', email: 'ext@idp.example', createdAt: T0 })).toBe(true);
        expect(await store.users.byId('u-ext')).toMatchObject({ username: 'ext', email: 'ext@idp.example', roles: ['viewer'] });
        expect(await store.users.passwordHash('u-ext')).toBeUndefined();
        expect((await store.identities.find('corp', 'sub-9'))?.userId).toBe('u-ext');
      });

      it('provisions nothing when the identity is already linked', async () => {
        await store.users.create(newUser('u-alice'));
        await store.identities.link(identity('corp', 'sub-1', 'u-alice'));
        expect(await store.identities.provision(newUser('u-second', { passwordHash: null }), { provider: 'corp', subject: 'sub-1', email: null, createdAt: T0 })).toBe(false);
        expect(await store.users.byId('u-second')).toBeUndefined();
        expect((await store.identities.find('corp', 'sub-1'))?.userId).toBe('u-alice');
      });

      it('provisions nothing when the username is taken, and throws', async () => {
        await store.users.create(newUser('u-alice', { username: 'taken' }));
        await expect(store.identities.provision(newUser('u-other', { username: 'taken', passwordHash: null }), { provider: 'corp', subject: 'sub-3', email: null, createdAt: T0 })).rejects.toThrow();
        expect(await store.identities.find('corp', 'sub-3')).toBeUndefined();
        expect(await store.users.byId('u-other')).toBeUndefined();
      });

      it(`provisions exactly one user when ${RACERS} logins of a new identity race`, async () => {
        const results = await Promise.all(
          Array.from({ length: RACERS }, (_, n) => store.identities.provision(newUser(`u-racer-${n}`, { passwordHash: null }), { provider: 'corp', subject: 'sub-race', email: null, createdAt: T0 })),
        );
        expect(count(results, true)).toBe(1);
        expect(await store.users.list()).toHaveLength(1);
        expect((await store.identities.find('corp', 'sub-race'))?.userId).toBe((await store.users.list())[0]!.id);
      });

      it('stores an upstream refresh token, replaces it, and clears the re-consent mark', async () => {
        await store.users.create(newUser('u-alice'));
        await store.identities.link(identity('corp', 'sub-1', 'u-alice'));
        expect(await store.identities.setRefreshToken('corp', 'sub-1', { ciphertext: 'v1.ct-1', expiresAt: T0 + DAY, at: T0 + SECOND })).toBe(true);
        expect(await store.identities.find('corp', 'sub-1')).toMatchObject({ refreshTokenCiphertext: 'v1.ct-1', refreshTokenExpiresAt: T0 + DAY, tokenUpdatedAt: T0 + SECOND, needsReconsent: false });
        expect(await store.identities.markNeedsReconsent('corp', 'sub-1')).toBe(true);
        expect(await store.identities.find('corp', 'sub-1')).toMatchObject({ needsReconsent: true, refreshTokenCiphertext: null, refreshTokenExpiresAt: null });
        expect(await store.identities.setRefreshToken('corp', 'sub-1', { ciphertext: 'v1.ct-2', expiresAt: null, at: T0 + MINUTE })).toBe(true);
        expect(await store.identities.find('corp', 'sub-1')).toMatchObject({ refreshTokenCiphertext: 'v1.ct-2', refreshTokenExpiresAt: null, tokenUpdatedAt: T0 + MINUTE, needsReconsent: false });
      });

      it('reports false when storing a token for, or marking, an unknown link', async () => {
        expect(await store.identities.setRefreshToken('corp', 'nobody', { ciphertext: 'v1.ct', expiresAt: null, at: T0 })).toBe(false);
        expect(await store.identities.markNeedsReconsent('corp', 'nobody')).toBe(false);
        expect(await store.identities.find('corp', 'nobody')).toBeUndefined();
      });

      it('refuses a link to an unknown user', async () => {
        await expect(store.identities.link(identity('corp', 'sub-1', 'u-nobody'))).rejects.toThrow();
        expect(await store.identities.find('corp', 'sub-1')).toBeUndefined();
      });
    });
  });
}
