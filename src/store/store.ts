/**
 * The storage port of the token module. The core owns it; SQLite (default), an in-memory SQLite
 * for tests and PostgreSQL (several replicas) implement it, and one contract suite runs against each.
 *
 * Times are milliseconds since the epoch. Secrets never arrive here in clear: passwords are
 * argon2id hashes, refresh tokens / codes / client secrets / backup codes SHA-256 hashes, TOTP
 * secrets and private keys ciphertext under the key-encryption key.
 *
 * Every one-time thing is consumed by a single compare-and-set, so two concurrent uses can never
 * both succeed.
 */
export interface Store {
  readonly users: UserStore;
  readonly clients: ClientStore;
  readonly codes: CodeStore;
  readonly refresh: RefreshStore;
  readonly keys: KeyStore;
  readonly challenges: ChallengeStore;
  readonly revocations: RevocationStore;
  readonly audit: AuditStore;
  /** Accounts at external identity providers linked to users (login through `upstream_providers`). */
  readonly identities: ExternalIdentityStore;
  /** Schema version after migrations. */
  readonly schemaVersion: number;
  /** Throws when the store cannot answer (closed, unreachable): `/health` and `/ready` turn 503. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface UserRecord {
  id: string;
  username: string;
  name: string | null;
  email: string | null;
  roles: string[];
  disabled: boolean;
  createdAt: number;
  /** Consecutive failed logins since the last success. */
  failedLogins: number;
  lockedUntil: number | null;
}

export interface NewUser {
  id: string;
  username: string;
  name?: string | null;
  email?: string | null;
  roles: string[];
  /** null: the user has no password (provisioned from an external identity provider) and cannot log in with one. */
  passwordHash: string | null;
  createdAt: number;
}

export interface AttemptReservation {
  allowed: boolean;
  /** The count after this attempt (unchanged when refused). */
  failures: number;
  lockedUntil: number | null;
  /** The lock before this attempt (an expired one, or null). */
  previousLockedUntil: number | null;
}

export interface TotpEnrolment {
  userId: string;
  secretCiphertext: string;
  createdAt: number;
  /** The last accepted RFC 6238 time step; a code of that step or earlier is a replay. */
  lastStep: number | null;
}

export interface UserStore {
  create(user: NewUser): Promise<void>;
  byId(id: string): Promise<UserRecord | undefined>;
  byUsername(username: string): Promise<UserRecord | undefined>;
  /** Users with this email address, compared case-insensitively (emails are not unique). */
  byEmail(email: string): Promise<UserRecord[]>;
  list(): Promise<UserRecord[]>;
  setDisabled(id: string, disabled: boolean): Promise<boolean>;
  setRoles(id: string, roles: string[]): Promise<boolean>;
  passwordHash(id: string): Promise<string | undefined>;
  /** Sets (or, for a user created without one, adds) the password hash; false for an unknown user. */
  setPasswordHash(id: string, hash: string): Promise<boolean>;
  /**
   * Counts a login attempt before its (slow) verification, in one compare-and-set: refused while
   * the account is locked at `now`; otherwise the failure count goes up and the lock the caller
   * computes from the new count (`lockFor`) is stored. Parallel guesses therefore can never
   * outrun the lockout. A success then calls `resetFailures` or `releaseAttempt`.
   */
  reserveAttempt(id: string, now: number, lockFor: (failures: number) => number | null): Promise<AttemptReservation>;
  /**
   * Gives back one reserved attempt (a correct password still owing its second factor): the count
   * drops by one and the lock this attempt set, unless another attempt has replaced it since,
   * goes back to what it was.
   */
  releaseAttempt(id: string, reservation: AttemptReservation): Promise<void>;
  resetFailures(id: string): Promise<void>;
  totp(id: string): Promise<TotpEnrolment | undefined>;
  setTotp(enrolment: TotpEnrolment, backupCodeHashes: string[]): Promise<void>;
  /** Removes TOTP and backup codes. */
  resetMfa(id: string): Promise<boolean>;
  /** Compare-and-set: accepts `step` only if it is later than the last accepted one. */
  advanceTotpStep(id: string, step: number): Promise<boolean>;
  /** Compare-and-set: consumes one unused backup code with this hash. */
  consumeBackupCode(id: string, codeHash: string, at: number): Promise<boolean>;
}

export type ClientType = 'confidential' | 'public';
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';

export interface ClientRecord {
  clientId: string;
  name: string;
  type: ClientType;
  authMethod: ClientAuthMethod;
  secretHash: string | null;
  /** Public keys (JWKS JSON) for private_key_jwt. */
  jwks: { keys: Record<string, unknown>[] } | null;
  grantTypes: GrantType[];
  redirectUris: string[];
  scopes: string[];
  /** Roles carried by client_credentials tokens (service accounts). */
  roles: string[];
  /** First-party clients skip the consent page. */
  firstParty: boolean;
  createdAt: number;
}

export interface ClientStore {
  create(client: ClientRecord): Promise<void>;
  byId(clientId: string): Promise<ClientRecord | undefined>;
  list(): Promise<ClientRecord[]>;
  remove(clientId: string): Promise<boolean>;
}

export interface AuthorizationCodeRecord {
  codeHash: string;
  clientId: string;
  userId: string;
  redirectUri: string;
  scope: string;
  codeChallenge: string;
  nonce: string | null;
  resource: string | null;
  amr: string[];
  authTime: number;
  expiresAt: number;
  consumedAt: number | null;
  /** The refresh family and access-token ids issued from this code, revoked on replay. */
  familyId: string | null;
  accessTokenJti: string | null;
}

export type Consumed<T> = { status: 'ok'; record: T } | { status: 'replayed'; record: T } | { status: 'unknown' };

export interface CodeStore {
  save(code: AuthorizationCodeRecord): Promise<void>;
  /** Reads a code without consuming it (to check whom it was issued to first). */
  lookup(codeHash: string): Promise<AuthorizationCodeRecord | undefined>;
  /** Compare-and-set; a second use reports `replayed` with what the first one issued. */
  consume(codeHash: string, at: number): Promise<Consumed<AuthorizationCodeRecord>>;
  /**
   * Records what the first exchange issued; false when a replay was already recorded, in which
   * case the caller revokes what it just issued.
   */
  recordIssued(codeHash: string, issued: { familyId: string | null; accessTokenJti: string }): Promise<boolean>;
  /** Marks a code as replayed; returns what its first exchange issued so far (null while it is still issuing). */
  markReplayed(codeHash: string, at: number): Promise<{ familyId: string | null; accessTokenJti: string | null } | undefined>;
  deleteExpired(before: number): Promise<number>;
}

export interface RefreshFamilyRecord {
  id: string;
  clientId: string;
  userId: string | null;
  scope: string;
  resource: string | null;
  amr: string[];
  authTime: number;
  createdAt: number;
  absoluteExpiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
  /** The DPoP key (RFC 7638 thumbprint) a public client's family is bound to; every refresh must prove it. */
  jkt: string | null;
}

export interface RefreshTokenRecord {
  tokenHash: string;
  familyId: string;
  createdAt: number;
  idleExpiresAt: number;
  /** Set when rotated (or revoked); a later use of it is a reuse. */
  consumedAt: number | null;
}

export interface RefreshStore {
  createFamily(family: RefreshFamilyRecord, first: RefreshTokenRecord): Promise<void>;
  family(id: string): Promise<RefreshFamilyRecord | undefined>;
  /** Compare-and-set on the token; returns it with its family, or `replayed` when it was already used. */
  consume(tokenHash: string, at: number): Promise<Consumed<{ token: RefreshTokenRecord; family: RefreshFamilyRecord }>>;
  /**
   * A rotation as one atomic step: consumes `tokenHash` (compare-and-set, like `consume`) and,
   * only when this call wins and the family may go on at `at` (not revoked, before its absolute
   * expiry, the token within its idle timeout), stores `next` in the same transaction. Both
   * happen or neither, so a failure in between (a lost database connection) never leaves a family
   * whose presented token is spent without its successor. `next.familyId` names the token's
   * family; a token of another family is neither consumed nor reported (`unknown`).
   */
  rotate(tokenHash: string, at: number, next: RefreshTokenRecord): Promise<Consumed<{ token: RefreshTokenRecord; family: RefreshFamilyRecord }>>;
  add(token: RefreshTokenRecord): Promise<void>;
  /** Returns false when the family was already revoked. */
  revokeFamily(id: string, at: number, reason: string): Promise<boolean>;
  /** Revokes every live family of a user (password reset, disabling, MFA reset); returns how many. */
  revokeUser(userId: string, at: number, reason: string): Promise<number>;
  /** Revokes every live family of a client (client removal); returns how many. */
  revokeClient(clientId: string, at: number, reason: string): Promise<number>;
  /** Looks a token up without consuming it (introspection, revocation). */
  lookup(tokenHash: string): Promise<{ token: RefreshTokenRecord; family: RefreshFamilyRecord } | undefined>;
}

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  publicJwk: Record<string, unknown>;
  privateCiphertext: string;
  createdAt: number;
  /** Signs from this time on (published in JWKS from `createdAt`). */
  activatesAt: number;
  /** Leaves the JWKS at this time; null while current. */
  retiresAt: number | null;
}

export interface KeyStore {
  insert(key: SigningKeyRecord): Promise<void>;
  /** Ordered by activation time, then creation time, then insertion order. */
  list(): Promise<SigningKeyRecord[]>;
  setRetiresAt(kid: string, at: number): Promise<void>;
  /** Rotation changes several keys at once: run them as one transaction. */
  rotate(retire: Array<{ kid: string; retiresAt: number }>, insert: SigningKeyRecord): Promise<void>;
}

/** Short-lived single-use server-side records: MFA challenges of `/login`, login-page interactions. */
export interface ChallengeRecord {
  idHash: string;
  kind: 'mfa' | 'interaction';
  userId: string | null;
  data: Record<string, unknown>;
  expiresAt: number;
  consumedAt: number | null;
}

export interface ChallengeStore {
  save(challenge: ChallengeRecord): Promise<void>;
  get(idHash: string): Promise<ChallengeRecord | undefined>;
  update(idHash: string, userId: string | null, data: Record<string, unknown>): Promise<void>;
  consume(idHash: string, at: number): Promise<Consumed<ChallengeRecord>>;
  /** Records a one-time identifier (client assertion `jti`); false if it was seen before. */
  useOnce(key: string, expiresAt: number): Promise<boolean>;
  deleteExpired(before: number): Promise<number>;
}

export interface RevocationStore {
  /** Revokes an access token by `jti` until it would expire anyway. */
  revoke(jti: string, expiresAt: number): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
  /** Revoked, unexpired jtis (loaded by the in-process verifier). */
  active(now: number): Promise<string[]>;
}

export type AuditOutcome = 'success' | 'failure';

export interface AuditEvent {
  at: number;
  type: string;
  outcome: AuditOutcome;
  /** Keyed hash of the user id; never a username. */
  actor: string | null;
  clientId: string | null;
  ip: string | null;
  reason: string | null;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  limit: number;
  type?: string | undefined;
  /** Keyed hash of the user (as written in `actor`). */
  actor?: string | undefined;
  /** Inclusive lower and exclusive upper bound of `at`. */
  since?: number | undefined;
  until?: number | undefined;
  /** Rows with an id below this one (paging backwards). */
  before?: number | undefined;
}

export interface AuditStore {
  append(event: AuditEvent): Promise<void>;
  query(q: AuditQuery): Promise<Array<AuditEvent & { id: number }>>;
}

/** An account at an external identity provider, linked to one user: `(provider, subject)` is unique, and so is `(provider, userId)`. */
export interface ExternalIdentityRecord {
  /** The `id` of the provider in `upstream_providers`. */
  provider: string;
  /** The provider's `sub` for the account. */
  subject: string;
  userId: string;
  /** The email the provider asserted when the link was made. */
  email: string | null;
  createdAt: number;
  /** The stored upstream grant stopped working: the user must sign in through the provider again. */
  needsReconsent: boolean;
  /** The provider's refresh token, ciphertext under the key-encryption key (`store_tokens: true`). */
  refreshTokenCiphertext: string | null;
  /** When the stored refresh token expires, when the provider said so. */
  refreshTokenExpiresAt: number | null;
  /** When the stored refresh token was last replaced. */
  tokenUpdatedAt: number | null;
}

export type NewExternalIdentity = Pick<ExternalIdentityRecord, 'provider' | 'subject' | 'userId' | 'email' | 'createdAt'>;

export interface UpstreamToken {
  ciphertext: string;
  expiresAt: number | null;
  at: number;
}

export interface ExternalIdentityStore {
  find(provider: string, subject: string): Promise<ExternalIdentityRecord | undefined>;
  /** Every link of a user, ordered by provider. */
  forUser(userId: string): Promise<ExternalIdentityRecord[]>;
  /** Links an identity to an existing user; false when the identity, or this user at this provider, is already linked. */
  link(identity: NewExternalIdentity): Promise<boolean>;
  /** Creates the user and its link together, all or nothing; false (and no user) when the identity is already linked. */
  provision(user: NewUser, identity: Omit<NewExternalIdentity, 'userId'>): Promise<boolean>;
  /** Replaces the stored upstream refresh token and clears `needsReconsent`; false for an unknown link. */
  setRefreshToken(provider: string, subject: string, token: UpstreamToken): Promise<boolean>;
  /** Marks the link as needing re-consent and forgets its refresh token; false for an unknown link. */
  markNeedsReconsent(provider: string, subject: string): Promise<boolean>;
}
