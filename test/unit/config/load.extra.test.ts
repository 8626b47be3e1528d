import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/temp_dir.js';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { PortcullisError } from '../../../src/lib/errors.js';

// Cases beyond load.test.ts.
function configFile(text: string): string {
  return join(tempDir('pc-unit-config', { 'portcullis.yaml': text }), 'portcullis.yaml');
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as PortcullisError).code).toBe('ERR_CONFIG_INVALID');
    return (err as PortcullisError).message;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

describe('configuration: edge cases', () => {
  it('refuses a file that is not valid YAML, naming the file', () => {
    const file = configFile('grpc:\n  address: [unclosed\n');
    expect(configError(() => loadConfig({ file, env: {} }))).toContain(`config file ${file} is not valid YAML`);
  });

  it('reads an empty file as all defaults', () => {
    const c = loadConfig({ file: configFile(''), env: {} });
    expect(c.grpc.address).toBe('127.0.0.1:9191');
    expect(c.policies.dir).toBe('./policies');
    expect(c.observability.logging.level).toBe('info');
  });

  it('uses all defaults without a file', () => {
    expect(loadConfig({ env: {} })).toEqual(parseConfig({}));
  });

  it('names the file and the key path of a bad value in it', () => {
    const file = configFile('issuers:\n  - issuer: https://idp\n    jwks_uri: not a url\n');
    const msg = configError(() => loadConfig({ file, env: {} }));
    expect(msg).toContain(`invalid configuration in ${file}`);
    expect(msg).toContain('issuers.0.jwks_uri');
  });

  it('names the key path of a bad environment override', () => {
    const msg = configError(() => loadConfig({ env: { PORTCULLIS_GRPC_ADDRESS: 'nope' } }));
    expect(msg).toContain('invalid configuration in (defaults)');
    expect(msg).toContain('grpc.address: must be host:port');
  });

  it('lets the environment override keys of the file, and ignores empty variables', () => {
    const file = configFile('grpc:\n  address: 127.0.0.1:7000\n  warmup_checks: 5\nadmin:\n  address: 127.0.0.1:7002\n');
    const c = loadConfig({ file, env: { PORTCULLIS_GRPC_ADDRESS: '0.0.0.0:7100', PORTCULLIS_ADMIN_ADDRESS: '', PORTCULLIS_HTTP_AUTHZ_ADDRESS: 'localhost:7200', PORTCULLIS_ADMIN_API_KEY: 'k'.repeat(16) } });
    expect(c.grpc).toMatchObject({ address: '0.0.0.0:7100', warmup_checks: 5 });
    expect(c.admin).toEqual({ address: '127.0.0.1:7002', api_key: 'k'.repeat(16) });
    expect(c.http_authz.address).toBe('localhost:7200');
  });

  it('fills a section left empty in the file from the environment', () => {
    const c = loadConfig({ file: configFile('grpc:\n'), env: { PORTCULLIS_GRPC_ADDRESS: '127.0.0.1:7300' } });
    expect(c.grpc.address).toBe('127.0.0.1:7300');
  });

  it('prefers an explicit file over PORTCULLIS_CONFIG', () => {
    const chosen = configFile('observability:\n  logging:\n    level: warn\n');
    const ignored = configFile('observability:\n  logging:\n    level: error\n');
    expect(loadConfig({ file: chosen, env: { PORTCULLIS_CONFIG: ignored } }).observability.logging.level).toBe('warn');
    expect(loadConfig({ env: { PORTCULLIS_CONFIG: ignored } }).observability.logging.level).toBe('error');
  });

  it('refuses production mode set from the environment while the development issuer is on', () => {
    expect(configError(() => loadConfig({ env: { PORTCULLIS_MODE: 'production' } }))).toContain('dev_issuer.enabled');
    const file = configFile('dev_issuer:\n  enabled: false\ntoken_module:\n  issuer: https://auth.example.com\n');
    expect(loadConfig({ file, env: { PORTCULLIS_MODE: 'production' } }).mode).toBe('production');
  });

  it('refuses an issuer with both jwks_uri and discovery, and an invalid jwks_uri', () => {
    expect(configError(() => parseConfig({ issuers: [{ issuer: 'https://idp', jwks_uri: 'https://idp/jwks', discovery: true }] }))).toContain('issuers.0.jwks_uri: set exactly one');
    expect(configError(() => parseConfig({ issuers: [{ issuer: 'https://idp', jwks_uri: 'not a url' }] }))).toContain('issuers.0.jwks_uri');
  });

  it('refuses unknown keys at the top level and inside an issuer', () => {
    expect(configError(() => parseConfig({ polices: {} }))).toContain('polices');
    expect(configError(() => parseConfig({ issuers: [{ issuer: 'https://idp', discovery: true, audience: 'x' }] }))).toMatch(/issuers\.0.*audience/);
  });

  it('names the key path of a short admin API key and a bad port', () => {
    expect(configError(() => parseConfig({ admin: { api_key: 'short' } }))).toContain('admin.api_key: must be at least 16 characters');
    expect(configError(() => parseConfig({ admin: { address: '127.0.0.1:123456' } }))).toContain('admin.address');
  });

  it('refuses a non-mapping configuration', () => {
    expect(configError(() => parseConfig(null))).toContain('(root)');
    expect(configError(() => parseConfig([]))).toContain('(root)');
  });

  it('accepts IPv6 addresses in brackets and host names', () => {
    expect(parseConfig({ grpc: { address: '[::1]:9191' }, admin: { address: 'localhost:9001' } })).toMatchObject({ grpc: { address: '[::1]:9191' }, admin: { address: 'localhost:9001' } });
  });

  it('returns a configuration that cannot be changed', () => {
    const c = parseConfig({});
    expect(() => {
      (c.grpc as { address: string }).address = '0.0.0.0:1';
    }).toThrow(TypeError);
    expect(c.grpc.address).toBe('127.0.0.1:9191');
  });
});
