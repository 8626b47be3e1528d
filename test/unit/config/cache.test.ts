import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, redactConfig, redactUrlPassword } from '../../../src/config/index.js';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { tempDir } from '../../helpers/temp_dir.js';

function configError(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    if (isPortcullisError(err, 'ERR_CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

const production = {
  mode: 'production',
  dev_issuer: { enabled: false },
  store: { driver: 'sqlite' },
  token_module: { issuer: 'https://auth.example', kek: 'a'.repeat(43) },
};

describe('cache configuration', () => {
  it('defaults to the in-process memory cache with a portcullis: prefix', () => {
    expect(parseConfig({}).cache).toEqual({ driver: 'memory', key_prefix: 'portcullis:', command_timeout_ms: 500, connect_timeout_ms: 5000, max_entries: 1_000_000 });
  });

  it('takes the Redis URL from PORTCULLIS_CACHE_URL', () => {
    const dir = tempDir('pc-cache-config', { 'c.yaml': 'cache:\n  driver: redis\n' });
    const c = loadConfig({ file: join(dir, 'c.yaml'), env: { PORTCULLIS_CACHE_URL: 'redis://cache.internal:6379/2' } });
    expect(c.cache).toMatchObject({ driver: 'redis', url: 'redis://cache.internal:6379/2' });
    // The URL alone does not switch drivers: memory with a URL is refused, naming the fix.
    expect(() => loadConfig({ env: { PORTCULLIS_CACHE_URL: 'redis://cache.internal:6379/2' } })).toThrow(/cache\.driver: cache\.url is set but cache\.driver is memory/);
  });

  it('requires a URL with driver redis and refuses a URL the memory driver would ignore', () => {
    expect(configError({ cache: { driver: 'redis' } })).toContain('cache.url: is required with cache.driver: redis');
    expect(configError({ cache: { url: 'redis://127.0.0.1:6379' } })).toContain('cache.driver: cache.url is set but cache.driver is memory');
    expect(configError({ cache: { driver: 'redis', url: 'http://127.0.0.1:6379' } })).toContain('cache.url: must be a redis:// or rediss:// (TLS) URL');
    expect(parseConfig({ cache: { driver: 'redis', url: 'rediss://:pw@cache:6380/1' } }).cache.url).toBe('rediss://:pw@cache:6380/1');
  });

  it('accepts the memory cache in production (one replica) as well as Redis', () => {
    expect(parseConfig(production).cache.driver).toBe('memory');
    expect(parseConfig({ ...production, cache: { driver: 'redis', url: 'rediss://cache:6380' } }).cache.driver).toBe('redis');
  });
});

describe('config redaction', () => {
  it('hides the password of URLs with credentials and nothing else', () => {
    expect(redactUrlPassword('redis://:s3cret@cache:6379/0')).toBe('redis://:[redacted]@cache:6379/0');
    expect(redactUrlPassword('rediss://app:s3cret@cache:6380')).toBe('rediss://app:[redacted]@cache:6380');
    expect(redactUrlPassword('redis://cache:6379')).toBe('redis://cache:6379');
    expect(redactUrlPassword('redis://app@cache:6379')).toBe('redis://app@cache:6379');
    expect(redactUrlPassword('./data/portcullis.db')).toBe('./data/portcullis.db');
  });

  it('prints secret keys as [redacted] and the cache URL without its password', () => {
    const c = parseConfig({ admin: { api_key: 'admin-key-0123456789' }, cache: { driver: 'redis', url: 'redis://:hunter2hunter2@cache:6379' }, token_module: { kek: 'b'.repeat(43) } });
    const printed = JSON.stringify(redactConfig(c));
    expect(printed).not.toContain('hunter2hunter2');
    expect(printed).not.toContain('admin-key-0123456789');
    expect(printed).not.toContain('b'.repeat(43));
    expect(redactConfig(c)).toMatchObject({ admin: { api_key: '[redacted]' }, token_module: { kek: '[redacted]' }, cache: { url: 'redis://:[redacted]@cache:6379' } });
  });
});
