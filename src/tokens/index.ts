export { createTokenVerifier, TOKEN_ERROR_DESCRIPTIONS, MAX_TOKEN_LENGTH, type TokenVerifier, type TrustedIssuer, type IssuerPolicy } from './verify.js';
export { createRemoteKeySource } from './remote_jwks.js';
export { createLocalKeySource } from './local_keys.js';
export { loadDevIssuer, type DevIssuer, type MintClaims } from './dev_issuer.js';
export { extractCredential, type Credential } from './credential.js';
export type { Principal } from './principal.js';
export type { KeySource } from './key_source.js';
export { createDpopVerifier, DpopError, type DpopVerifier, type DpopRequest, type DpopRejectReason, type DpopProofOptions, type VerifiedProof } from './dpop.js';
export { createDpopNonces, type DpopNonces } from './dpop_nonce.js';
