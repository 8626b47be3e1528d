import { describe, expect, it } from 'vitest';
import { principalFromClaims, readPath } from '../../../src/tokens/principal.js';

const defaults = { roles_claim: 'roles', scope_claim: 'scope' };

describe('readPath', () => {
  it('reads a top-level claim', () => {
    expect(readPath({ roles: ['a'] }, 'roles')).toEqual(['a']);
  });

  it('follows a dotted path into nested objects', () => {
    expect(readPath({ realm_access: { roles: ['admin'] } }, 'realm_access.roles')).toEqual(['admin']);
    expect(readPath({ a: { b: { c: 1 } } }, 'a.b.c')).toBe(1);
  });

  it('tries a key containing dots whole first', () => {
    expect(readPath({ 'https://example.com/roles': ['x'], https: { 'example.com/roles': ['y'] } }, 'https://example.com/roles')).toEqual(['x']);
    expect(readPath({ 'a.b': 'whole', a: { b: 'nested' } }, 'a.b')).toBe('whole');
  });

  it('gives undefined for a missing path or one that runs through a non-object', () => {
    expect(readPath({}, 'roles')).toBeUndefined();
    expect(readPath({ a: { b: 1 } }, 'a.c')).toBeUndefined();
    expect(readPath({ a: 'text' }, 'a.length')).toBeUndefined();
    expect(readPath({ a: null }, 'a.b')).toBeUndefined();
    expect(readPath({ a: [{ b: 1 }] }, 'a.0.b')).toBeUndefined();
  });
});

describe('principalFromClaims', () => {
  const claims = { sub: 'alice', exp: 1_700_000_000, roles: ['viewer', 'editor'], scope: 'read write' };

  it('maps subject, issuer, roles, scopes and expiry', () => {
    expect(principalFromClaims(claims, 'https://idp', defaults)).toEqual({
      subject: 'alice',
      issuer: 'https://idp',
      roles: ['viewer', 'editor'],
      scopes: ['read', 'write'],
      clientId: '',
      mfa: false,
      expiresAt: 1_700_000_000_000,
      claims,
    });
  });

  it('reads roles from a dotted roles claim such as realm_access.roles', () => {
    const p = principalFromClaims({ sub: 's', exp: 1, realm_access: { roles: ['admin', 'offline_access'] } }, 'i', { ...defaults, roles_claim: 'realm_access.roles' });
    expect(p.roles).toEqual(['admin', 'offline_access']);
  });

  it('reads a space-separated roles string and drops empty and non-string entries', () => {
    expect(principalFromClaims({ sub: 's', exp: 1, roles: ' a  b ' }, 'i', defaults).roles).toEqual(['a', 'b']);
    expect(principalFromClaims({ sub: 's', exp: 1, roles: ['a', '', 7, null, 'b'] }, 'i', defaults).roles).toEqual(['a', 'b']);
    expect(principalFromClaims({ sub: 's', exp: 1, roles: { admin: true } }, 'i', defaults).roles).toEqual([]);
    expect(principalFromClaims({ sub: 's', exp: 1 }, 'i', defaults).roles).toEqual([]);
  });

  it('splits a space-separated scope string', () => {
    expect(principalFromClaims({ sub: 's', exp: 1, scope: 'openid  profile\temail' }, 'i', defaults).scopes).toEqual(['openid', 'profile', 'email']);
    expect(principalFromClaims({ sub: 's', exp: 1, scope: '' }, 'i', defaults).scopes).toEqual([]);
  });

  it('falls back to an scp array when the scope claim is absent', () => {
    expect(principalFromClaims({ sub: 's', exp: 1, scp: ['a', 'b'] }, 'i', defaults).scopes).toEqual(['a', 'b']);
    expect(principalFromClaims({ sub: 's', exp: 1, scp: 'a b' }, 'i', defaults).scopes).toEqual(['a', 'b']);
    expect(principalFromClaims({ sub: 's', exp: 1, scope: 'x', scp: ['a'] }, 'i', defaults).scopes).toEqual(['x']);
  });

  it('reads a configured scope claim, without the scp fallback', () => {
    const mapping = { ...defaults, scope_claim: 'permissions' };
    expect(principalFromClaims({ sub: 's', exp: 1, permissions: ['docs:read'], scope: 'ignored' }, 'i', mapping).scopes).toEqual(['docs:read']);
    expect(principalFromClaims({ sub: 's', exp: 1, scp: ['a'] }, 'i', mapping).scopes).toEqual([]);
  });

  it.each<[unknown, boolean]>([
    [['pwd', 'mfa'], true],
    [['otp'], true],
    [['pwd'], false],
    [[], false],
    ['mfa', false],
    [undefined, false],
  ])('reads amr %j as mfa=%s', (amr, mfa) => {
    expect(principalFromClaims({ sub: 's', exp: 1, amr }, 'i', defaults).mfa).toBe(mfa);
  });

  it('takes client_id over azp, and azp when client_id is missing or not a string', () => {
    expect(principalFromClaims({ sub: 's', exp: 1, client_id: 'cli', azp: 'web' }, 'i', defaults).clientId).toBe('cli');
    expect(principalFromClaims({ sub: 's', exp: 1, azp: 'web' }, 'i', defaults).clientId).toBe('web');
    expect(principalFromClaims({ sub: 's', exp: 1, client_id: 42, azp: 'web' }, 'i', defaults).clientId).toBe('web');
    expect(principalFromClaims({ sub: 's', exp: 1, azp: ['web'] }, 'i', defaults).clientId).toBe('');
  });
});

describe('claim paths never read inherited properties', () => {
  it('returns undefined for prototype members', async () => {
    const { readPath } = await import('../../../src/tokens/principal.js');
    expect(readPath({}, 'toString')).toBeUndefined();
    expect(readPath({ a: {} }, 'a.constructor')).toBeUndefined();
    expect(readPath({ a: { b: ['x'] } }, 'a.b')).toEqual(['x']);
  });
});
