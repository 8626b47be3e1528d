import { json } from './json_column.js';
import type { AuditEvent, AuthorizationCodeRecord, ChallengeRecord, ClientRecord, RefreshFamilyRecord, RefreshTokenRecord, SigningKeyRecord } from './store.js';

/**
 * Rows of the SQL adapters and their records. SQLite and PostgreSQL share the table layout;
 * booleans arrive as 0/1 from SQLite and as true/false from PostgreSQL.
 */

export interface ClientRow {
  client_id: string;
  name: string;
  type: ClientRecord['type'];
  auth_method: ClientRecord['authMethod'];
  secret_hash: string | null;
  jwks: string | null;
  grant_types: string;
  redirect_uris: string;
  scopes: string;
  roles: string;
  first_party: number | boolean;
  created_at: number;
}

export const toClient = (r: ClientRow): ClientRecord => ({
  clientId: r.client_id,
  name: r.name,
  type: r.type,
  authMethod: r.auth_method,
  secretHash: r.secret_hash,
  jwks: json.read(r.jwks),
  grantTypes: json.read(r.grant_types),
  redirectUris: json.read(r.redirect_uris),
  scopes: json.read(r.scopes),
  roles: json.read(r.roles),
  firstParty: r.first_party === 1 || r.first_party === true,
  createdAt: r.created_at,
});

export interface CodeRow {
  code_hash: string;
  client_id: string;
  user_id: string;
  redirect_uri: string;
  scope: string;
  code_challenge: string;
  nonce: string | null;
  resource: string | null;
  amr: string;
  auth_time: number;
  expires_at: number;
  consumed_at: number | null;
  family_id: string | null;
  access_token_jti: string | null;
}

export const toCode = (r: CodeRow): AuthorizationCodeRecord => ({
  codeHash: r.code_hash,
  clientId: r.client_id,
  userId: r.user_id,
  redirectUri: r.redirect_uri,
  scope: r.scope,
  codeChallenge: r.code_challenge,
  nonce: r.nonce,
  resource: r.resource,
  amr: json.read(r.amr),
  authTime: r.auth_time,
  expiresAt: r.expires_at,
  consumedAt: r.consumed_at,
  familyId: r.family_id,
  accessTokenJti: r.access_token_jti,
});

export interface FamilyRow {
  id: string;
  client_id: string;
  user_id: string | null;
  scope: string;
  resource: string | null;
  amr: string;
  auth_time: number;
  created_at: number;
  absolute_expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  jkt: string | null;
}

export interface TokenRow {
  token_hash: string;
  family_id: string;
  created_at: number;
  idle_expires_at: number;
  consumed_at: number | null;
}

export const toFamily = (r: FamilyRow): RefreshFamilyRecord => ({
  id: r.id,
  clientId: r.client_id,
  userId: r.user_id,
  scope: r.scope,
  resource: r.resource,
  amr: json.read(r.amr),
  authTime: r.auth_time,
  createdAt: r.created_at,
  absoluteExpiresAt: r.absolute_expires_at,
  revokedAt: r.revoked_at,
  revokedReason: r.revoked_reason,
  jkt: r.jkt,
});

export const toToken = (r: TokenRow): RefreshTokenRecord => ({ tokenHash: r.token_hash, familyId: r.family_id, createdAt: r.created_at, idleExpiresAt: r.idle_expires_at, consumedAt: r.consumed_at });

/** Whether a rotation may go on: the family is live and the token within its idle timeout at `at`. */
export const rotationAllowed = (f: FamilyRow, t: TokenRow, at: number): boolean => f.revoked_at === null && f.absolute_expires_at > at && t.idle_expires_at > at;

export interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_ciphertext: string;
  created_at: number;
  activates_at: number;
  retires_at: number | null;
}

export const toKey = (r: KeyRow): SigningKeyRecord => ({
  kid: r.kid,
  alg: r.alg,
  publicJwk: json.read(r.public_jwk),
  privateCiphertext: r.private_ciphertext,
  createdAt: r.created_at,
  activatesAt: r.activates_at,
  retiresAt: r.retires_at,
});

export interface ChallengeRow {
  id_hash: string;
  kind: ChallengeRecord['kind'];
  user_id: string | null;
  data: string;
  expires_at: number;
  consumed_at: number | null;
}

export const toChallenge = (r: ChallengeRow): ChallengeRecord => ({ idHash: r.id_hash, kind: r.kind, userId: r.user_id, data: json.read(r.data), expiresAt: r.expires_at, consumedAt: r.consumed_at });

export interface AuditRow {
  id: number;
  at: number;
  type: string;
  outcome: AuditEvent['outcome'];
  actor: string | null;
  client_id: string | null;
  ip: string | null;
  reason: string | null;
  details: string;
}

export const toAudit = (r: AuditRow): AuditEvent & { id: number } => ({
  id: r.id,
  at: r.at,
  type: r.type,
  outcome: r.outcome,
  actor: r.actor,
  clientId: r.client_id,
  ip: r.ip,
  reason: r.reason,
  details: json.read(r.details),
});
