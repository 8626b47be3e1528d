import type { JWSHeaderParameters } from 'jose';

/** A verification key as jose accepts it. */
export type VerifyKey = import('node:crypto').webcrypto.CryptoKey | import('node:crypto').KeyObject | Uint8Array;

/** Where an issuer's verification keys come from: a remote JWKS, or keys held in-process. */
export interface KeySource {
  /**
   * The keys that may verify a token with this header (usually one; several when the header
   * names no kid). Throws a PortcullisError (ERR_TOKEN_KEY_NOT_FOUND, ERR_KEYS_UNAVAILABLE).
   */
  keysFor(header: JWSHeaderParameters): Promise<VerifyKey[]>;
  /** True once keys were loaded and are not past their stale window. */
  hasKeys(): boolean;
  /**
   * Starts background refresh (idempotent). Resolves once the first load has been tried, so a
   * server can hold back SERVING until keys are there; it never rejects.
   */
  start(): Promise<void>;
  stop(): void;
}
