import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKek, loadKek } from '../../../src/issuer/kek.js';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { tempDir } from '../../helpers/temp_dir.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return isPortcullisError(err) ? err.code : String(err);
  }
  return 'no error';
};

describe('key-encryption key', () => {
  it('round-trips a secret and never stores it in clear', () => {
    const kek = createKek(randomBytes(32));
    const sealed = kek.encrypt('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'totp');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('JBSWY3DP');
    expect(kek.decrypt(sealed, 'totp')).toBe('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    expect(kek.encrypt('same', 'totp')).not.toBe(kek.encrypt('same', 'totp'));
  });

  it('binds the purpose: a TOTP ciphertext does not decrypt as a signing key', () => {
    const kek = createKek(randomBytes(32));
    expect(code(() => kek.decrypt(kek.encrypt('x', 'totp'), 'signing-key'))).toBe('ERR_KEK');
  });

  it('refuses tampered data and the wrong key', () => {
    const kek = createKek(randomBytes(32));
    const sealed = kek.encrypt('secret', 'totp');
    const parts = sealed.split('.');
    parts[2] = Buffer.from('tampered').toString('base64url');
    expect(code(() => kek.decrypt(parts.join('.'), 'totp'))).toBe('ERR_KEK');
    expect(code(() => createKek(randomBytes(32)).decrypt(sealed, 'totp'))).toBe('ERR_KEK');
    expect(code(() => kek.decrypt('not-a-ciphertext', 'totp'))).toBe('ERR_KEK');
  });

  it('generates the key file with owner-only permissions outside production and reuses it', () => {
    const file = join(tempDir('pc-kek'), 'sub', 'kek');
    const first = loadKek({ file, generate: true });
    expect(first.generated).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const sealed = first.kek.encrypt('v', 'totp');
    const again = loadKek({ file, generate: true });
    expect(again.generated).toBe(false);
    expect(again.kek.decrypt(sealed, 'totp')).toBe('v');
  });

  it('refuses to generate one when generation is off (production) and rejects malformed keys', () => {
    const dir = tempDir('pc-kek');
    expect(code(() => loadKek({ file: join(dir, 'missing'), generate: false }))).toBe('ERR_KEK');
    expect(existsSync(join(dir, 'missing'))).toBe(false);
    expect(code(() => loadKek({ value: 'short', file: join(dir, 'x'), generate: true }))).toBe('ERR_KEK');
    writeFileSync(join(dir, 'bad'), 'not base64url!!\n');
    expect(code(() => loadKek({ file: join(dir, 'bad'), generate: true }))).toBe('ERR_KEK');
    const value = randomBytes(32).toString('base64url');
    expect(loadKek({ value, file: join(dir, 'unused'), generate: false }).generated).toBe(false);
    expect(existsSync(join(dir, 'unused'))).toBe(false);
    expect(readFileSync(join(dir, 'bad'), 'utf8')).toContain('not base64url');
  });
});
