import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/index.js';
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

describe('configuration', () => {
  it('has a default for every key', () => {
    const c = parseConfig({});
    expect(c.grpc.address).toBe('127.0.0.1:9191');
    expect(c.policies.dir).toBe('./policies');
    expect(c.policies.decision_cache_size).toBe(10000);
    expect(c.observability.logging.level).toBe('info');
    expect(c.dev_issuer.enabled).toBe(true);
    expect(c.issuers).toEqual([]);
  });

  it('fills issuer defaults: algorithms allow-list, skew, claims, JWKS timings', () => {
    const [i] = parseConfig({ issuers: [{ issuer: 'https://idp', discovery: true }] }).issuers;
    expect(i).toMatchObject({ algorithms: ['ES256', 'RS256', 'EdDSA'], clock_skew_seconds: 30, roles_claim: 'roles', scope_claim: 'scope', audiences: [] });
    expect(i!.jwks).toMatchObject({ cooldown_seconds: 30, request_budget_ms: 250, refresh_min_seconds: 60, refresh_max_seconds: 3600 });
  });

  it('is frozen all the way down', () => {
    const c = parseConfig({ issuers: [{ issuer: 'https://idp', discovery: true }] });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.issuers[0]!.jwks)).toBe(true);
    expect(Object.isFrozen(c.issuers[0]!.algorithms)).toBe(true);
  });

  it('names every bad key path in one error', () => {
    const msg = configError({ grpc: { address: 'nope', warmup_checks: -1 }, observability: { logging: { level: 'loud' } }, issuers: [{ issuer: 'x', jwks_uri: 'http://a/j', discovery: true, algorithms: ['HS256'] }] });
    expect(msg).toContain('grpc.address: must be host:port');
    expect(msg).toContain('grpc.warmup_checks');
    expect(msg).toContain('observability.logging.level');
    expect(msg).toContain('issuers.0.algorithms.0');
    // Cross-field rules of an issuer run once its fields parse.
    expect(configError({ issuers: [{ issuer: 'x', jwks_uri: 'http://a/j', discovery: true }] })).toContain('issuers.0.jwks_uri: set exactly one of `jwks_uri` or `discovery: true`');
    expect(configError({ issuers: [{ issuer: 'x' }] })).toContain('issuers.0.jwks_uri: set exactly one of `jwks_uri` or `discovery: true`');
  });

  it.each([['none'], ['HS256'], ['HS512']])('never accepts the %s algorithm', (alg) => {
    expect(configError({ issuers: [{ issuer: 'x', discovery: true, algorithms: [alg] }] })).toContain('issuers.0.algorithms.0');
  });

  it('applies the cross-field checks', () => {
    expect(configError({ mode: 'production' })).toContain('dev_issuer.enabled: the development issuer is refused in mode: production');
    expect(parseConfig({ mode: 'production', dev_issuer: { enabled: false }, token_module: { issuer: 'https://auth.example.com' } }).mode).toBe('production');
    expect(configError({ mode: 'production', dev_issuer: { enabled: false } })).toContain('token_module.issuer: must be set in mode: production');
    expect(configError({ mode: 'production', dev_issuer: { enabled: false }, token_module: { issuer: 'http://auth.example.com' } })).toContain('token_module.issuer: must be an https URL');
    expect(configError({ mode: 'production', dev_issuer: { enabled: false }, token_module: { enabled: false }, store: { driver: 'memory' } })).toContain('store.driver: the in-memory store is refused in mode: production');
    expect(parseConfig({ mode: 'production', dev_issuer: { enabled: false }, token_module: { enabled: false } }).token_module.enabled).toBe(false);
    expect(configError({ token_module: { kek: 'too-short' } })).toContain('token_module.kek: must be 32 bytes in base64url');
    expect(configError({ token_module: { refresh_token_idle_seconds: 100, refresh_token_absolute_seconds: 10 } })).toContain('token_module.refresh_token_idle_seconds');
    expect(configError({ token_module: { issuer: 'https://idp.example' }, issuers: [{ issuer: 'https://idp.example', discovery: true }] })).toContain('token_module.issuer: collides with a configured issuer');
    expect(configError({ issuers: [{ issuer: 'a', discovery: true }, { issuer: 'a', discovery: true }] })).toContain('issuers.1.issuer: duplicate issuer a');
    expect(configError({ issuers: [{ issuer: 'a', discovery: true, jwks: { refresh_min_seconds: 100, refresh_max_seconds: 10 } }] })).toContain('issuers.0.jwks.refresh_min_seconds');
    expect(configError({ issuers: [{ issuer: 'urn:portcullis:dev', discovery: true }] })).toContain('dev_issuer.issuer: collides with a configured issuer');
  });

  it('rejects unknown keys', () => {
    expect(configError({ grpc: { adress: '127.0.0.1:1' } })).toMatch(/grpc.*adress/);
  });

  it('reads a YAML file and lets the environment override addresses and paths', () => {
    const dir = tempDir('pc-config', { 'c.yaml': 'grpc:\n  address: 127.0.0.1:7000\nobservability:\n  logging:\n    level: warn\n' });
    const file = `${dir}/c.yaml`;
    expect(loadConfig({ file, env: {} }).grpc.address).toBe('127.0.0.1:7000');
    const c = loadConfig({ env: { PORTCULLIS_CONFIG: file, PORTCULLIS_GRPC_ADDRESS: '[::1]:7001', PORTCULLIS_POLICIES_DIR: '/srv/policies', PORTCULLIS_LOG_LEVEL: 'debug' } });
    expect(c.grpc.address).toBe('[::1]:7001');
    expect(c.policies.dir).toBe('/srv/policies');
    expect(c.observability.logging.level).toBe('debug');
  });

  it('reads workers as a count, auto, or PORTCULLIS_WORKERS; refuses anything else by path', () => {
    expect(parseConfig({}).workers).toBe(1);
    expect(parseConfig({ workers: 'auto' }).workers).toBe('auto');
    expect(parseConfig({ workers: 4 }).workers).toBe(4);
    expect(loadConfig({ env: { PORTCULLIS_WORKERS: '2' } }).workers).toBe(2);
    expect(loadConfig({ env: { PORTCULLIS_WORKERS: 'auto' } }).workers).toBe('auto');
    for (const bad of [0, -1, 1.5, 65, 'many', '0']) expect(() => parseConfig({ workers: bad }), String(bad)).toThrow(/workers/);
  });

  it('refuses grpc.max_concurrent_streams below 1 or not a whole number, and defaults it to 128', () => {
    for (const bad of [0, -1, 2.5, 'many']) expect(() => parseConfig({ grpc: { max_concurrent_streams: bad } }), String(bad)).toThrow(/grpc.max_concurrent_streams/);
    expect(parseConfig({}).grpc.max_concurrent_streams).toBe(128);
  });

  it('reports a missing or non-mapping file by name', () => {
    const dir = tempDir('pc-config', { 'list.yaml': '- a\n- b\n' });
    expect(() => loadConfig({ file: `${dir}/missing.yaml`, env: {} })).toThrow(`cannot read config file ${dir}/missing.yaml`);
    expect(() => loadConfig({ file: `${dir}/list.yaml`, env: {} })).toThrow('must hold a mapping at the top level');
  });
});

describe('empty sections', () => {
  it('reads a section left empty in YAML as its defaults', () => {
    const dir = tempDir('pc-config', { 'c.yaml': 'observability:\ngrpc:\n  address: 127.0.0.1:7002\n' });
    const c = loadConfig({ file: `${dir}/c.yaml`, env: {} });
    expect(c.observability.logging.level).toBe('info');
    expect(c.grpc.address).toBe('127.0.0.1:7002');
  });
});
