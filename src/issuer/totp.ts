import { generateSecret, generateURI, verify } from 'otplib';
import { randomInt } from 'node:crypto';

/** RFC 6238 with the authenticator-app defaults: SHA-1, 6 digits, 30-second steps. */
export const TOTP_PERIOD_SECONDS = 30;

export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export function totpUri(secret: string, issuer: string, account: string): string {
  return generateURI({ issuer, label: account, secret });
}

/**
 * Checks a code within ±1 step. Returns the matched time step (for replay protection: the store
 * accepts a step only once, and never an earlier one), or undefined.
 */
export async function matchTotp(secret: string, code: string, nowMs: number): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  try {
    const result = await verify({ secret, token: code, epoch: Math.floor(nowMs / 1000), epochTolerance: TOTP_PERIOD_SECONDS });
    return result.valid ? Math.floor(Math.floor(nowMs / 1000) / TOTP_PERIOD_SECONDS) + result.delta : undefined;
  } catch {
    return undefined;
  }
}

/** Ten one-time backup codes, `xxxx-xxxx` from an unambiguous alphabet (~40 bits each). */
export function newBackupCodes(count = 10): string[] {
  const alphabet = '23456789abcdefghjkmnpqrstuvwxyz';
  return Array.from({ length: count }, () => {
    const chars = Array.from({ length: 8 }, () => alphabet[randomInt(alphabet.length)]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}`;
  });
}

/** Backup codes compare without case or the dash. */
export function normalizeBackupCode(code: string): string {
  return code.toLowerCase().replace(/[^a-z0-9]/g, '');
}
