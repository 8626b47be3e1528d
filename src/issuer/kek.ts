import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PortcullisError } from '../lib/errors.js';

/**
 * The key-encryption key: AES-256-GCM over TOTP secrets and private signing keys at rest.
 * Ciphertext format: `v1.<iv>.<ciphertext>.<tag>` (base64url parts); the purpose is bound as
 * additional authenticated data so a TOTP ciphertext cannot be replayed as a key.
 */
export interface Kek {
  encrypt(plaintext: string, purpose: string): string;
  decrypt(ciphertext: string, purpose: string): string;
  /** A sub-key derived for one use (e.g. hashing user ids for telemetry). */
  derive(label: string): Buffer;
}

export interface KekSource {
  /** base64url of 32 bytes, from config or env. */
  value?: string | undefined;
  /** Where to read it when `value` is unset. */
  file: string;
  /** Generate the file when missing (development only). */
  generate: boolean;
}

export function loadKek({ value, file, generate }: KekSource): { kek: Kek; generated: boolean } {
  if (value) return { kek: createKek(decodeKey(value, 'token_module.kek')), generated: false };
  if (existsSync(file)) return { kek: createKek(decodeKey(readFileSync(file, 'utf8').trim(), file)), generated: false };
  if (!generate) {
    throw new PortcullisError('ERR_KEK', `no key-encryption key: set token_module.kek (env PORTCULLIS_KEK) or provide ${file}; it is generated automatically only outside mode: production`);
  }
  const key = randomBytes(32);
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process (the server and a CLI command starting together) created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { kek: createKek(decodeKey(readFileSync(file, 'utf8').trim(), file)), generated: false };
    throw err;
  }
  chmodSync(file, 0o600);
  return { kek: createKek(key), generated: true };
}

export function createKek(key: Buffer): Kek {
  if (key.length !== 32) throw new PortcullisError('ERR_KEK', 'the key-encryption key must be 32 bytes');
  return {
    encrypt(plaintext, purpose) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(purpose));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    decrypt(ciphertext, purpose) {
      const [version, iv, ct, tag] = ciphertext.split('.');
      if (version !== 'v1' || !iv || ct === undefined || !tag) throw new PortcullisError('ERR_KEK', 'unknown ciphertext format');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(purpose));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
      } catch (cause) {
        throw new PortcullisError('ERR_KEK', 'cannot decrypt: wrong key-encryption key or tampered data', { cause });
      }
    },
    derive: (label) => createHmac('sha256', key).update(`portcullis:${label}`).digest(),
  };
}

function decodeKey(text: string, where: string): Buffer {
  const key = Buffer.from(text, 'base64url');
  if (key.length !== 32 || key.toString('base64url') !== text) throw new PortcullisError('ERR_KEK', `${where}: the key-encryption key must be 32 bytes in base64url`);
  return key;
}
