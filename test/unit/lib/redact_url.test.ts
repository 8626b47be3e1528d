import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../../src/lib/redact_url.js';

describe('redactUrl', () => {
  it('replaces the password and keeps user, host, port, database and parameters', () => {
    expect(redactUrl('postgres://app:s3cr%40t@db.internal:5432/auth?sslmode=require')).toBe('postgres://app:[redacted]@db.internal:5432/auth?sslmode=require');
  });

  it('replaces a password given as a query parameter', () => {
    const out = redactUrl('postgresql://db/auth?user=app&password=hunter22');
    expect(out).toContain('password=[redacted]');
    expect(out).not.toContain('hunter22');
  });

  it('leaves a URL without a password as it is', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/test')).toBe('postgres://postgres@127.0.0.1:5432/test');
  });

  it('shows nothing of a value it cannot parse', () => {
    expect(redactUrl('not a url with pw=secret')).toBe('[redacted]');
  });
});
