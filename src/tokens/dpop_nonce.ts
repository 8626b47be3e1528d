import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';

/** Server-provided DPoP nonces (RFC 9449 §8): issued fresh, accepted while recent. */
export interface DpopNonces {
  /** A nonce for the `DPoP-Nonce` response header. */
  current(): string;
  valid(nonce: string): boolean;
}

export interface DpopNonceOptions {
  /** HMAC key; replicas that share it accept each other's nonces. Random when unset (one process). */
  secret?: Buffer | undefined;
  /** A nonce stays valid between one and two of these windows. */
  lifetimeSeconds: number;
  clock: Clock;
}

/**
 * Stateless nonces: the window number and its HMAC. Nothing is stored, so every replica that
 * shares the key accepts them; a nonce of the current or the previous window is valid.
 */
export function createDpopNonces({ secret = randomBytes(32), lifetimeSeconds, clock }: DpopNonceOptions): DpopNonces {
  const windowMs = lifetimeSeconds * 1000;
  const mac = (window: number) => createHmac('sha256', secret).update(`dpop-nonce:${window}`).digest().subarray(0, 16);
  const encode = (window: number) => `${window.toString(36)}.${mac(window).toString('base64url')}`;
  return {
    current: () => encode(Math.floor(clock.now() / windowMs)),
    valid(nonce) {
      const dot = nonce.indexOf('.');
      if (dot < 1 || nonce.length > 64) return false;
      const window = Number.parseInt(nonce.slice(0, dot), 36);
      const now = Math.floor(clock.now() / windowMs);
      if (!Number.isSafeInteger(window) || window < now - 1 || window > now) return false;
      const given = Buffer.from(nonce.slice(dot + 1), 'base64url');
      const expected = mac(window);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}
