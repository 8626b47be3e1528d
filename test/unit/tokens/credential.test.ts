import { describe, expect, it } from 'vitest';
import { extractCredential } from '../../../src/tokens/credential.js';

describe('extractCredential', () => {
  it('finds no credential without an Authorization header', () => {
    expect(extractCredential(undefined)).toEqual({ kind: 'none' });
    expect(extractCredential([])).toEqual({ kind: 'none' });
  });

  it('extracts a bearer token', () => {
    expect(extractCredential(['Bearer abc.def.ghi'])).toEqual({ kind: 'bearer', token: 'abc.def.ghi' });
  });

  it('reads the scheme case-insensitively and trims surrounding whitespace', () => {
    expect(extractCredential(['bearer t1'])).toEqual({ kind: 'bearer', token: 't1' });
    expect(extractCredential(['BEARER t2'])).toEqual({ kind: 'bearer', token: 't2' });
    expect(extractCredential(['  Bearer   t3  '])).toEqual({ kind: 'bearer', token: 't3' });
  });

  it('treats other schemes as no bearer credential', () => {
    expect(extractCredential(['Basic dXNlcjpwYXNz'])).toEqual({ kind: 'none' });
    expect(extractCredential(['Bearerx abc'])).toEqual({ kind: 'none' });
    expect(extractCredential(['abc.def.ghi'])).toEqual({ kind: 'none' });
  });

  it('refuses a bearer scheme without a token', () => {
    expect(extractCredential(['Bearer'])).toEqual({ kind: 'invalid', detail: 'empty bearer token' });
    expect(extractCredential(['Bearer    '])).toEqual({ kind: 'invalid', detail: 'empty bearer token' });
  });

  it('refuses several Authorization headers as ambiguous', () => {
    expect(extractCredential(['Bearer a', 'Bearer b'])).toEqual({ kind: 'invalid', detail: 'multiple authorization headers' });
    expect(extractCredential(['Basic x', 'Bearer b'])).toEqual({ kind: 'invalid', detail: 'multiple authorization headers' });
  });
});
