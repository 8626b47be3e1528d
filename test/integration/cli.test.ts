import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync, cpSync, existsSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

/** The built entry point users run (`npm ci` builds it through `prepare`; `npm test` rebuilds it). */
const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
}

let work: string;

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build (npm test does)`);
  work = tempDir('pc-cli');
});

describe('configuration errors', () => {
  it('refuses to start on an invalid config, naming every bad key, with exit code 2', () => {
    const file = join(work, 'bad.yaml');
    writeFileSync(file, 'grpc:\n  address: "not an address"\nobservability:\n  logging:\n    level: loud\nissuers:\n  - issuer: https://idp.example\n');
    const r = run(['serve', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`invalid configuration in ${file}`);
    expect(r.stderr).toContain('grpc.address: must be host:port');
    expect(r.stderr).toContain('observability.logging.level');
    expect(r.stderr).toContain('issuers.0.jwks_uri: set exactly one of `jwks_uri` or `discovery: true`');
  });

  it('reports unknown keys and unparseable YAML', () => {
    const typo = join(work, 'typo.yaml');
    writeFileSync(typo, 'grcp:\n  address: 127.0.0.1:1\n');
    const r1 = run(['config', 'check', '--config', typo]);
    expect(r1.status).toBe(2);
    expect(r1.stderr).toMatch(/Unrecognized key.*grcp/);
    const broken = join(work, 'broken.yaml');
    writeFileSync(broken, 'grpc: [unclosed\n');
    const r2 = run(['config', 'check'], { PORTCULLIS_CONFIG: broken });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toContain(`config file ${broken} is not valid YAML`);
  });

  it('prints the effective configuration without secrets', () => {
    const r = run(['config', 'check'], { PORTCULLIS_ADMIN_API_KEY: 'super-secret-admin-key-1234' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ admin: { api_key: '[redacted]' }, grpc: { address: '127.0.0.1:9191' } });
    expect(r.stdout).not.toContain('super-secret-admin-key-1234');
  });

  it('shows upstream client secrets and the key-encryption key only as set', () => {
    const file = join(work, 'upstream.yaml');
    writeFileSync(file, 'upstream_providers:\n  - id: corp\n    name: Corp\n    issuer: https://login.corp.example\n    client_id: portcullis\n');
    const kek = 'K'.repeat(43);
    const r = run(['config', 'check', '--config', file], { PORTCULLIS_UPSTREAM_CORP_CLIENT_SECRET: 'upstream-secret-from-env', PORTCULLIS_KEK: kek });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ upstream_providers: [{ id: 'corp', client_secret: '[redacted]' }], token_module: { kek: '[redacted]' } });
    expect(r.stdout).not.toContain('upstream-secret-from-env');
    expect(r.stdout).not.toContain(kek);
  });

  it('prints the cache URL without its password, and the KEK as [redacted]', () => {
    const file = join(work, 'redis.yaml');
    writeFileSync(file, 'cache:\n  driver: redis\n');
    const kek = 'k'.repeat(43);
    const r = run(['config', 'check', '--config', file], { PORTCULLIS_CACHE_URL: 'redis://app:redis-pass-9876@cache.internal:6379/1', PORTCULLIS_KEK: kek });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ cache: { driver: 'redis', url: 'redis://app:[redacted]@cache.internal:6379/1' }, token_module: { kek: '[redacted]' } });
    expect(r.stdout).not.toContain('redis-pass-9876');
    expect(r.stdout).not.toContain(kek);
  });

  it('refuses the development issuer in production mode', () => {
    const r = run(['config', 'check'], { PORTCULLIS_MODE: 'production' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('dev_issuer.enabled: the development issuer is refused in mode: production');
  });

  it('refuses to start on a broken policy folder with a file:line:col message and exit code 1', () => {
    const dir = join(work, 'broken-policies');
    cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
    writeFileSync(join(dir, 'rbac.cedar'), '@id("x")\npermit (principal, action, resource) when { 1 + };\n');
    const r = run(['serve'], { PORTCULLIS_POLICIES_DIR: dir, PORTCULLIS_GRPC_ADDRESS: '127.0.0.1:0', PORTCULLIS_ADMIN_ADDRESS: '127.0.0.1:0', PORTCULLIS_LOG_LEVEL: 'silent' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot start: rbac\.cedar:2:\d+ /);
  });
});

describe('serve, token mint and check', () => {
  let server: ChildProcess;
  let address = '';
  let config = '';
  let policies = '';
  const logs: string[] = [];

  beforeAll(async () => {
    config = join(work, 'dev.yaml');
    policies = join(work, 'live-policies');
    cpSync(EXAMPLE_POLICIES, policies, { recursive: true });
    writeFileSync(config, `grpc:\n  address: 127.0.0.1:0\n  warmup_checks: 10\nadmin:\n  address: 127.0.0.1:0\nhttp:\n  address: 127.0.0.1:0\nstore:\n  sqlite_file: ${join(work, 'data', 'portcullis.db')}\ntoken_module:\n  kek_file: ${join(work, 'data', 'kek')}\n  key_rotation:\n    reload_seconds: 3600\npolicies:\n  dir: ${policies}\n  watch: false\ndev_issuer:\n  key_file: ${join(work, 'data', 'dev-key.json')}\n`);
    server = spawn(process.execPath, [BIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (b: Buffer) => logs.push(...String(b).split('\n').filter(Boolean)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${logs.join('\n')}`)), 15_000);
      server.stdout!.on('data', () => {
        const line = logs.map((l) => JSON.parse(l) as { msg: string; grpc?: string }).find((l) => l.msg === 'portcullis serving');
        if (line?.grpc) {
          address = line.grpc;
          clearTimeout(timer);
          resolve();
        }
      });
    });
  });

  afterAll(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
  });

  it('generates the development key with owner-only permissions', () => {
    const key = join(work, 'data', 'dev-key.json');
    expect(existsSync(key)).toBe(true);
    expect(statSync(key).mode & 0o777).toBe(0o600);
  });

  it('mints a token that the running sidecar accepts, and check exits 0 on allow and 1 on deny', () => {
    const mint = run(['token', 'mint', '--sub', 'vic', '--roles', 'viewer', '--config', config]);
    expect(mint.status).toBe(0);
    const jwt = mint.stdout.trim();
    expect(jwt.split('.')).toHaveLength(3);
    const allowed = run(['check', 'GET', '/documents/d1', '--address', address, '--token', jwt]);
    expect(allowed.status).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ allowed: true, upstream_headers: { 'x-portcullis-subject': 'vic' } });
    const denied = run(['check', 'DELETE', '/documents/d1', '--address', address, '--token', jwt]);
    expect(denied.status).toBe(1);
    expect(JSON.parse(denied.stdout)).toMatchObject({ allowed: false, http_status: 403, body: { error: 'forbidden' } });
  });

  it('follows the README walk-through: MFA token may delete, no token gets 401, health is SERVING', () => {
    const mfa = run(['token', 'mint', '--sub', 'alice', '--mfa', '--config', config]).stdout.trim();
    expect(run(['check', 'DELETE', '/documents/d1', '--address', address, '--token', mfa]).status).toBe(0);
    const anonymous = run(['check', 'GET', '/documents/d1', '--address', address]);
    expect(anonymous.status).toBe(1);
    expect(JSON.parse(anonymous.stdout)).toMatchObject({ http_status: 401, headers: { 'www-authenticate': 'Bearer realm="portcullis"' } });
    const health = run(['health', '--address', address]);
    expect(health.status).toBe(0);
    expect(health.stdout.trim()).toBe('SERVING');
  });

  it('reloads policies on SIGHUP and keeps the last good set when the new one is broken', async () => {
    const viewer = run(['token', 'mint', '--sub', 'vic', '--roles', 'viewer', '--config', config]).stdout.trim();
    const canList = () => run(['check', 'GET', '/documents', '--address', address, '--token', viewer]).status;
    expect(canList()).toBe(0);
    const rbac = join(policies, 'rbac.cedar');
    const original = readFileSync(rbac, 'utf8');
    writeFileSync(rbac, original.replace('action in [Action::"read", Action::"list"]', 'action in [Action::"read"]'));
    const loaded = () => logs.filter((l) => l.includes('"policies loaded"')).length;
    const before = loaded();
    server.kill('SIGHUP');
    await expect.poll(loaded, { timeout: 10_000 }).toBe(before + 1);
    expect(canList()).toBe(1);
    writeFileSync(rbac, 'permit (principal, action, resource) when { 1 + };');
    server.kill('SIGHUP');
    await expect.poll(() => logs.some((l) => l.includes('policy reload rejected')), { timeout: 10_000 }).toBe(true);
    expect(logs.find((l) => l.includes('policy reload rejected'))).toMatch(/rbac\.cedar:1:\d+/);
    expect(canList()).toBe(1); // still the last good set
    expect(run(['check', 'GET', '/documents/d1', '--address', address, '--token', viewer]).status).toBe(0);
    writeFileSync(rbac, original);
  });

  it('explains one decision offline with --explain: route, slice, entities, determining policies', () => {
    const jwt = run(['token', 'mint', '--sub', 'alice', '--roles', 'viewer', '--config', config]).stdout.trim();
    const r = run(['check', '--explain', '--config', config, '--token', jwt, 'DELETE', '/documents/d1']);
    expect(r.status).toBe(1);
    const e = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(e).toMatchObject({
      authentication: { credential: 'bearer', subject: 'alice', roles: ['viewer'], mfa: false },
      route: { index: 6, action: 'delete', resource: { type: 'Document', id: 'd1' } },
      slice: { key: 'Action::"delete"|Document', policies: ['owner-manage', 'delete-requires-mfa', 'admin-all'] },
      decision: { allow: false, status: 403, determiningPolicies: ['delete-requires-mfa'], policiesChecked: 3 },
      context: { mfa: false, method: 'DELETE', path: '/documents/d1' },
    });
    expect(JSON.stringify(e)).not.toContain(jwt);
    const viaConfig = JSON.parse(run(['check', '--config', config, '--token', jwt, 'GET', '/documents/d1']).stdout) as Record<string, unknown>;
    expect(viaConfig).toMatchObject({ decision: { allow: true, determiningPolicies: ['owner-manage', 'viewer-read'] } }); // file order
    const bad = JSON.parse(run(['check', '--explain', '--config', config, '--token', 'garbage', 'GET', '/documents/d1']).stdout) as Record<string, unknown>;
    expect(bad).toMatchObject({ authentication: { credential: 'bearer', error: 'not a compact JWS' }, decision: { allow: false, status: 401 } });
  });

  it('publishes and signs with a key rotated by the CLI once SIGHUP re-reads the store', async () => {
    const http = logs.map((l) => JSON.parse(l) as { msg: string; http?: string }).find((l) => l.msg === 'portcullis serving')!.http!;
    const kids = async () => ((await (await fetch(`http://${http}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const before = await kids();
    expect(before).toHaveLength(1);
    const rotated = run(['keys', 'rotate', '--immediate', '--config', config]);
    expect(rotated.status).toBe(0);
    const { rotated: kid } = JSON.parse(rotated.stdout) as { rotated: string };
    expect(await kids()).toEqual(before); // the server has not re-read the store yet
    server.kill('SIGHUP');
    await expect.poll(kids, { timeout: 10_000 }).toEqual([...before, kid]);
    const list = run(['keys', 'list', '--config', config]).stdout.trim().split('\n').map((l) => JSON.parse(l) as { kid: string; state: string });
    expect(list.map((k) => [k.kid, k.state])).toEqual([[before[0], 'previous'], [kid, 'active']]);
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('config schema', () => {
  it('prints a JSON Schema with a description for every key', () => {
    const r = run(['config', 'schema']);
    expect(r.status).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, { description?: string }> };
    expect(Object.keys(schema.properties).sort()).toEqual(['admin', 'cache', 'dev_issuer', 'dpop', 'grpc', 'http', 'http_authz', 'issuers', 'lifecycle', 'limits', 'mode', 'observability', 'policies', 'request_body', 'store', 'token_cache', 'token_module', 'upstream_providers', 'workers']);
    for (const [key, value] of Object.entries(schema.properties)) expect(value.description, key).toBeTruthy();
  });
});
