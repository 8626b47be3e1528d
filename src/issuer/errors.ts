/**
 * OAuth 2.x errors (RFC 6749 §5.2, RFC 6750 §3.1). `error` and `description` are what the client
 * sees; `reason` is the precise internal cause for metrics, audit and logs, never sent.
 */
export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  readonly description: string;
  readonly reason: string;
  headers: Record<string, string> = {};

  constructor(error: string, status: number, description: string, reason = error) {
    super(description);
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.description = description;
    this.reason = reason;
  }
}

export class InvalidRequest extends OAuthError {
  constructor(description: string, reason = 'invalid_request') {
    super('invalid_request', 400, description, reason);
  }
}

export class InvalidClient extends OAuthError {
  constructor(reason: string, basicAttempted = false) {
    super('invalid_client', 401, 'client authentication failed', reason);
    if (basicAttempted) this.headers['www-authenticate'] = 'Basic realm="portcullis"';
  }
}

export class InvalidGrant extends OAuthError {
  constructor(reason: string, description = 'the grant is invalid, expired, revoked or was issued to another client') {
    super('invalid_grant', 400, description, reason);
  }
}

export class UnauthorizedClient extends OAuthError {
  constructor(description: string) {
    super('unauthorized_client', 400, description);
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor() {
    super('unsupported_grant_type', 400, 'grant_type is not supported');
  }
}

export class InvalidScope extends OAuthError {
  constructor(description = 'the requested scope is not allowed for this client') {
    super('invalid_scope', 400, description);
  }
}

export class InvalidTarget extends OAuthError {
  constructor() {
    super('invalid_target', 400, 'the requested resource is not allowed');
  }
}

export class InvalidToken extends OAuthError {
  constructor(reason: string) {
    super('invalid_token', 401, 'the access token is invalid', reason);
    this.headers['www-authenticate'] = 'Bearer error="invalid_token"';
  }
}

/** RFC 9449 §5: a DPoP proof at the token endpoint that fails a check; the precise reason stays internal. */
export class InvalidDpopProof extends OAuthError {
  constructor(reason: string) {
    super('invalid_dpop_proof', 400, 'the DPoP proof is invalid', `dpop_${reason}`);
  }
}

/** RFC 9449 §8: the proof must carry a server nonce; the fresh one travels in `DPoP-Nonce`. */
export class UseDpopNonce extends OAuthError {
  constructor(nonce: string, status = 400) {
    super('use_dpop_nonce', status, 'a DPoP nonce is required', 'dpop_nonce');
    this.headers['dpop-nonce'] = nonce;
  }
}

/** Login failures: one answer for every cause (unknown user, wrong password, locked, disabled). */
export class InvalidCredentials extends OAuthError {
  constructor(reason: string) {
    super('invalid_credentials', 401, 'the username or password is incorrect', reason);
  }
}

export class MfaFailed extends OAuthError {
  constructor(reason: string) {
    super('invalid_mfa', 401, 'the code is incorrect or the MFA token has expired', reason);
  }
}

export class TooManyRequests extends OAuthError {
  constructor(retryAfterSeconds: number) {
    super('too_many_requests', 429, 'too many attempts; try again later', 'rate_limited');
    this.headers['retry-after'] = String(retryAfterSeconds);
  }
}

export class ServerError extends OAuthError {
  constructor(reason: string) {
    super('server_error', 500, 'the server could not complete the request', reason);
  }
}

/** The store is unreachable (RFC 6749 §4.1.2.1 `temporarily_unavailable`): the client may retry shortly; nothing was granted. */
export class TemporarilyUnavailable extends OAuthError {
  constructor(reason: string, retryAfterSeconds = 1) {
    super('temporarily_unavailable', 503, 'the server is temporarily unable to handle the request; try again shortly', reason);
    this.headers['retry-after'] = String(retryAfterSeconds);
  }
}
