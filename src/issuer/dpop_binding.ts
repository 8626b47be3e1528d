import { DpopError } from '../tokens/index.js';
import type { IssuerContext } from './context.js';
import { InvalidDpopProof, UseDpopNonce } from './errors.js';

/** What a token request brings besides its parameters: where it came from, and the key it proved. */
export interface TokenRequest {
  ip: string | null;
  /** Thumbprint of the DPoP proof key (RFC 9449 §5); tokens issued for this request are bound to it. */
  jkt: string | undefined;
}

/**
 * The key a token request proves possession of: undefined without a `DPoP` header (or with DPoP
 * off, where the header is ignored as RFC 9449 §5 allows). A proof that fails any check is
 * `invalid_dpop_proof` (or `use_dpop_nonce` with a fresh nonce); the reason is counted.
 */
export async function tokenRequestKey(ctx: IssuerContext, proofs: readonly string[] | undefined): Promise<string | undefined> {
  if (!ctx.dpop || !proofs || proofs.length === 0) return undefined;
  try {
    const { jkt } = await ctx.dpop.verify({ proofs, method: 'POST', urls: [`${ctx.issuer()}/oauth2/token`] });
    return jkt;
  } catch (err) {
    if (!(err instanceof DpopError)) throw err;
    ctx.metrics.dpopRejected.inc({ reason: err.reason });
    if (err.reason === 'nonce' && ctx.dpop.nonces) throw new UseDpopNonce(ctx.dpop.nonces.current());
    throw new InvalidDpopProof(err.reason);
  }
}

/** `DPoP-Nonce` for a successful response when server nonces are on (RFC 9449 §8.2). */
export function freshNonceHeader(ctx: IssuerContext): Record<string, string> {
  return ctx.dpop?.nonces ? { 'dpop-nonce': ctx.dpop.nonces.current() } : {};
}
