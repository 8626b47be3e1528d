/**
 * Versioned schema of the SQLite store. Each entry moves the schema one version up and runs in
 * its own transaction at start-up; `PRAGMA user_version` records where a database stands.
 * Never edit a released entry: append a new one.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT,
    email TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
  );
  CREATE TABLE password_credentials (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE totp_enrolments (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_ciphertext TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_step INTEGER
  );
  CREATE TABLE backup_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    consumed_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
  );
  CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('confidential', 'public')),
    auth_method TEXT NOT NULL,
    secret_hash TEXT,
    jwks TEXT,
    grant_types TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '[]',
    first_party INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    resource TEXT,
    amr TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER,
    family_id TEXT,
    access_token_jti TEXT
  );
  CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    resource TEXT,
    amr TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT
  );
  CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    consumed_at INTEGER
  );
  CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
  CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_ciphertext TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at INTEGER
  );
  CREATE TABLE challenges (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER
  );
  CREATE TABLE used_once (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT,
    client_id TEXT,
    ip TEXT,
    reason TEXT,
    details TEXT NOT NULL
  );
  CREATE INDEX audit_events_type ON audit_events(type, id);
  CREATE INDEX audit_events_at ON audit_events(at);
  `,
  // 2: a code replay that arrives while the first exchange is still issuing is recorded, so
  // whichever of the two finishes second revokes what the first one issued.
  `ALTER TABLE authorization_codes ADD COLUMN replayed_at INTEGER;`,
  // 3: refresh families of public clients bound to a DPoP key (RFC 9449 §5).
  `ALTER TABLE refresh_families ADD COLUMN jkt TEXT;`,
  // 4: accounts at external identity providers linked to users, with the brokered upstream refresh
  // token (ciphertext); users are found by email to link a verified one.
  `
  CREATE TABLE external_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    created_at INTEGER NOT NULL,
    needs_reconsent INTEGER NOT NULL DEFAULT 0,
    refresh_token_ciphertext TEXT,
    refresh_token_expires_at INTEGER,
    token_updated_at INTEGER,
    PRIMARY KEY (provider, subject),
    UNIQUE (provider, user_id)
  );
  CREATE INDEX external_identities_user ON external_identities(user_id);
  CREATE INDEX users_email ON users(lower(email));
  `,
];
