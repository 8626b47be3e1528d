import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * The token module's administration commands (`portcullis users|clients|keys`), run as the built
 * CLI against a SQLite file and a KEK file in a temporary folder.
 */

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const PASSWORD = 'a long enough password';

/** The environment without PORTCULLIS_* settings of whoever runs the tests. */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTCULLIS_'))) as Record<string, string>;

function writeConfig(dir: string): string {
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(
    file,
    [
      'grpc:',
      '  address: 127.0.0.1:0',
      '  warmup_checks: 10',
      'admin:',
      '  address: 127.0.0.1:0',
      'http:',
      '  address: 127.0.0.1:0',
      'store:',
      `  sqlite_file: ${join(dir, 'data', 'portcullis.db')}`,
      'token_module:',
      `  kek_file: ${join(dir, 'data', 'kek')}`,
      'policies:',
      `  dir: ${EXAMPLE_POLICIES}`,
      '  watch: false',
      'dev_issuer:',
      '  enabled: false',
      '',
    ].join('\n'),
  );
  return file;
}

let dir: string;
let config: string;

function run(args: string[], input = '') {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: baseEnv, input, timeout: 20_000 });
}
/** Runs a command with `--config` and returns its stdout as parsed JSON lines (exit 0 required). */
function jsonLines(args: string[], input = ''): Array<Record<string, unknown>> {
  const r = run([...args, '--config', config], input);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
const users = () => jsonLines(['users', 'list']);
const userNamed = (name: string) => users().find((u) => u.username === name);
const keys = () => jsonLines(['keys', 'list']);
/** Every byte the CLI left in the data folder (database, WAL, KEK). */
const dataBytes = () =>
  readdirSync(join(dir, 'data'))
    .map((f) => readFileSync(join(dir, 'data', f)).toString('latin1'))
    .join('\n');

/** Each CLI run is a fresh Node process (about a second, more on a busy machine). */
beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build (npm test does)`);
  dir = tempDir('pc-token-cli');
  config = writeConfig(dir);
  // The first command creates the store, the KEK and the first signing key.
  expect(run(['keys', 'list', '--config', config]).status).toBe(0);
});

describe('data files', { timeout: 60_000 }, () => {
  it('creates the SQLite file and an owner-only KEK file on first use', () => {
    const kek = join(dir, 'data', 'kek');
    const db = join(dir, 'data', 'portcullis.db');
    expect(existsSync(db)).toBe(true);
    expect(existsSync(kek)).toBe(true);
    expect(statSync(kek).mode & 0o777).toBe(0o600);
    expect(statSync(db).mode & 0o077).toBe(0); // password hashes and encrypted secrets: owner only
    expect(readFileSync(kek, 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('keeps stdout for results: the first command prints exactly its JSON line, diagnostics go to stderr', () => {
    const fresh = tempDir('pc-token-cli-fresh');
    const r = run(['users', 'add', 'first', '--config', writeConfig(fresh)], `${PASSWORD}\n`);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(fresh, 'data', 'kek'))).toBe(true); // this run generated the KEK
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({ id: expect.any(String), username: 'first', roles: [] });
  });
});

describe('users', { timeout: 60_000 }, () => {
  it('adds a user with the password from the first line of stdin, and prints the user without it', () => {
    const r = run(['users', 'add', 'alice', '--role', 'viewer', '--role', 'auditor', '--name', 'Alice', '--email', 'alice@example.com', '--config', config], `${PASSWORD}\nsecond line is ignored\n`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), username: 'alice', roles: ['viewer', 'auditor'] });
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    expect(dataBytes()).not.toContain(PASSWORD); // stored as an argon2id hash only
  });

  it('never takes the password from argv, and needs it on stdin', () => {
    const asArgument = run(['users', 'add', 'bob', 'hunter2hunter2', '--config', config]);
    expect(asArgument.status).not.toBe(0);
    expect(asArgument.stderr).toContain('too many arguments');
    const noInput = run(['users', 'add', 'bob', '--config', config], '');
    expect(noInput.status).toBe(2);
    expect(noInput.stderr).toContain('expected the secret on stdin');
    expect(userNamed('bob')).toBeUndefined();
  });

  it('rejects a short password with exit 2 and creates no user', () => {
    const r = run(['users', 'add', 'shorty', '--config', config], 'short\n');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('portcullis: password must be at least 8 characters\n');
    expect(r.stdout).toBe('');
    expect(userNamed('shorty')).toBeUndefined();
  });

  it('refuses a duplicate username with exit 2', () => {
    const r = run(['users', 'add', 'alice', '--config', config], `${PASSWORD}\n`);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('user alice already exists');
  });

  it('lists users as JSON lines', () => {
    run(['users', 'add', 'carol', '--config', config], `${PASSWORD}\n`);
    const list = users();
    expect(list.map((u) => u.username)).toEqual(['alice', 'carol']);
    expect(list[0]).toEqual({ id: expect.any(String), username: 'alice', roles: ['viewer', 'auditor'], disabled: false, mfa: false, locked_until: null });
  });

  it('enrols TOTP with --no-qr: an otpauth:// URI and ten distinct backup codes, no QR code', () => {
    const r = run(['users', 'enroll-totp', 'alice', '--no-qr', '--config', config]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^otpauth:\/\/totp\/Portcullis:alice\?secret=[A-Z2-7]{32}&issuer=Portcullis$/);
    expect(lines[1]).toMatch(/^Backup codes/);
    const codes = lines.slice(2);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}$/);
    expect(r.stdout).not.toMatch(/[█▀▄]/);
    const secret = new URL(lines[0]!).searchParams.get('secret')!;
    expect(dataBytes()).not.toContain(secret); // encrypted under the KEK
    for (const c of codes) expect(dataBytes()).not.toContain(c);
    expect(userNamed('alice')?.mfa).toBe(true);
  });

  it('disables and enables an account', () => {
    expect(run(['users', 'disable', 'alice', '--config', config]).status).toBe(0);
    expect(userNamed('alice')?.disabled).toBe(true);
    expect(run(['users', 'enable', 'alice', '--config', config]).status).toBe(0);
    expect(userNamed('alice')?.disabled).toBe(false);
    const ghost = run(['users', 'disable', 'ghost', '--config', config]);
    expect(ghost.status).toBe(2);
    expect(ghost.stderr).toContain('no user ghost');
  });

  it('resets MFA: TOTP and backup codes are removed', () => {
    expect(userNamed('alice')?.mfa).toBe(true);
    expect(run(['users', 'reset-mfa', 'alice', '--config', config]).status).toBe(0);
    expect(userNamed('alice')?.mfa).toBe(false);
  });
});

describe('clients', { timeout: 60_000 }, () => {
  let secret: string;

  it('prints a generated secret once when adding a confidential client', () => {
    const [added] = jsonLines(['clients', 'add', 'web', '--grant', 'authorization_code,refresh_token', '--redirect-uri', 'https://app.example/cb', '--scope', 'openid profile', '--name', 'Web app']);
    expect(added).toEqual({ client_id: 'web', client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
    secret = String(added!.client_secret);
  });

  it('never shows the secret in clients list, nor stores it in clear', () => {
    const r = run(['clients', 'list', '--config', config]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain(secret);
    const list = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const web = list.find((c) => c.client_id === 'web');
    expect(web).toEqual({ client_id: 'web', name: 'Web app', type: 'confidential', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['https://app.example/cb'], scopes: ['openid', 'profile'], roles: [], first_party: false });
    for (const c of list) expect(Object.keys(c)).not.toContain('client_secret');
    expect(dataBytes()).not.toContain(secret);
  });

  it('adds a public client with a loopback http redirect and no secret', () => {
    const [added] = jsonLines(['clients', 'add', 'cli-app', '--type', 'public', '--grant', 'authorization_code', '--redirect-uri', 'http://127.0.0.1:8765/callback', '--scope', 'openid']);
    expect(added).toEqual({ client_id: 'cli-app', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
  });

  it.each([
    ['a public client with client_credentials', ['bad1', '--type', 'public', '--grant', 'client_credentials'], 'a public client cannot use client_credentials'],
    ['an http redirect URI off loopback', ['bad2', '--grant', 'authorization_code', '--redirect-uri', 'http://app.example/cb'], 'redirect URI http://app.example/cb must be https (http only on loopback)'],
    ['a redirect URI with a fragment', ['bad3', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example/cb#x'], 'redirect URI https://app.example/cb#x must not have a fragment'],
    ['authorization_code without a redirect URI', ['bad4', '--grant', 'authorization_code'], 'authorization_code needs at least one redirect URI'],
    ['an unknown grant', ['bad5', '--grant', 'password'], 'unknown grant password'],
    ['no grant', ['bad6'], 'name at least one --grant'],
    ['an existing client id', ['web', '--grant', 'client_credentials'], 'client web already exists'],
  ])('refuses %s with exit 2 and a clear message', (_what, args, message) => {
    const r = run(['clients', 'add', ...args, '--config', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`portcullis: ${message}`);
    expect(r.stdout).toBe('');
  });

  it('registered none of the refused clients', () => {
    const ids = jsonLines(['clients', 'list']).map((c) => c.client_id);
    expect(ids.sort()).toEqual(['cli-app', 'portcullis-login', 'web']);
  });
});

describe('keys', { timeout: 60_000 }, () => {
  it('lists the first key as active, a rotated key as pending, and an --immediate one as active', () => {
    const [first, ...none] = keys();
    expect(none).toEqual([]);
    expect(first).toMatchObject({ alg: 'ES256', state: 'active', retires_at: null });

    const before = Date.now();
    const [rotated] = jsonLines(['keys', 'rotate']);
    const activates = Date.parse(String(rotated!.activates_at));
    // Published now, signing after the default prepublish time (3600 s).
    expect(activates).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(activates).toBeLessThanOrEqual(Date.now() + 3600_000);
    let states = Object.fromEntries(keys().map((k) => [k.kid, k.state]));
    expect(states).toEqual({ [String(first!.kid)]: 'active', [String(rotated!.rotated)]: 'pending' });

    const [immediate] = jsonLines(['keys', 'rotate', '--immediate']);
    expect(Math.abs(Date.parse(String(immediate!.activates_at)) - Date.now())).toBeLessThan(10_000);
    states = Object.fromEntries(keys().map((k) => [k.kid, k.state]));
    expect(states[String(immediate!.rotated)]).toBe('active');
    expect(states[String(first!.kid)]).toBe('previous');
    expect(Object.values(states).filter((s) => s === 'active')).toHaveLength(1);
  });
});

describe('audit tail', { timeout: 60_000 }, () => {
  it('prints the latest events oldest first, filtered by kind and user, with users only as hashes', () => {
    expect(run(['users', 'add', 'tail-user', '--config', config], 'tail-user-password\n').status).toBe(0);
    expect(run(['users', 'disable', 'tail-user', '--config', config]).status).toBe(0);
    const all = jsonLines(['audit', 'tail', '-n', '1000']);
    expect(all.length).toBeGreaterThanOrEqual(2);
    const ids = all.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const added = jsonLines(['audit', 'tail', '--kind', 'admin.user_added', '-n', '1000']);
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((e) => e.kind === 'admin.user_added')).toBe(true);
    const name = 'tail-user';
    const mine = jsonLines(['audit', 'tail', '--user', name, '-n', '1000']);
    expect(mine.map((e) => e.kind)).toEqual(['admin.user_added', 'admin.user_disabled']);
    expect(new Set(mine.map((e) => e.actor)).size).toBe(1);
    expect(JSON.stringify(all)).not.toContain(name);
    const last = jsonLines(['audit', 'tail', '-n', '2']);
    expect(last.map((e) => e.id)).toEqual(all.slice(-2).map((e) => e.id));
  });

  it('follows new events with --follow and stops on SIGINT', async () => {
    // One event is there before the tail starts: its first page is exactly that line, however slowly it starts.
    expect(run(['users', 'add', 'follow-first', '--config', config], 'follow-first-password\n').status).toBe(0);
    const tail = spawn(process.execPath, [BIN, 'audit', 'tail', '-f', '--interval', '200', '-n', '1', '--kind', 'admin.user_added', '--config', config], { env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tail.stdout!.on('data', (b: Buffer) => (out += String(b)));
    try {
      const lines = () => out.split('\n').filter(Boolean);
      await expect.poll(() => lines().length, { timeout: 15_000 }).toBe(1);
      expect(run(['users', 'add', 'follow-me', '--config', config], 'follow-me-password\n').status).toBe(0);
      const id = String(userNamed('follow-me')!.id);
      await expect.poll(() => lines().length, { timeout: 15_000 }).toBe(2);
      expect(JSON.parse(lines()[1]!)).toMatchObject({ kind: 'admin.user_added', outcome: 'success' });
      expect(Number(JSON.parse(lines()[1]!).id)).toBeGreaterThan(Number(JSON.parse(lines()[0]!).id));
      expect(out).not.toContain(id);
      const exited = new Promise<number | null>((resolve) => tail.once('exit', resolve));
      tail.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (tail.exitCode === null) tail.kill('SIGKILL');
    }
  });

  it('refuses a bad filter with exit code 2 naming it', () => {
    const r = run(['audit', 'tail', '--since', 'yesterday', '--config', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--since');
    const u = run(['audit', 'tail', '--user', 'nobody-at-all', '--config', config]);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain('no user nobody-at-all');
  });
});

describe('a running server', { timeout: 60_000 }, () => {
  let server: ChildProcess;
  let httpBase = '';
  const logs: string[] = [];

  beforeAll(async () => {
    server = spawn(process.execPath, [BIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: baseEnv });
    let partial = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${logs.join('\n')}`)), 15_000);
      server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${logs.join('\n')}`)));
      server.stdout!.on('data', (b: Buffer) => {
        const lines = (partial + String(b)).split('\n');
        partial = lines.pop()!;
        for (const line of lines.filter(Boolean)) {
          logs.push(line);
          const entry = JSON.parse(line) as { msg?: string; http?: string };
          if (entry.msg === 'portcullis serving' && entry.http) {
            httpBase = `http://${entry.http}`;
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
  });

  afterAll(async () => {
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.on('exit', resolve));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  });

  const post = (path: string, body: unknown) => fetch(`${httpBase}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('logs in users created with the CLI, with the TOTP enrolled by the CLI, and refuses one disabled by the CLI', async () => {
    expect(run(['users', 'add', 'erin', '--role', 'viewer', '--config', config], `${PASSWORD}\n`).status).toBe(0);
    const enrol = run(['users', 'enroll-totp', 'erin', '--no-qr', '--config', config]);
    const secret = new URL(enrol.stdout.split('\n')[0]!).searchParams.get('secret')!;
    const first = await post('/login', { username: 'erin', password: PASSWORD });
    expect(first.status).toBe(200);
    const { mfa_token: mfaToken } = (await first.json()) as { mfa_token: string };
    const second = await post('/login/mfa', { mfa_token: mfaToken, code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) }) });
    expect(second.status).toBe(200);
    expect(((await second.json()) as { access_token?: string }).access_token).toEqual(expect.any(String));

    expect(run(['users', 'add', 'dave', '--config', config], `${PASSWORD}\n`).status).toBe(0);
    expect((await post('/login', { username: 'dave', password: PASSWORD })).status).toBe(200);
    expect(run(['users', 'disable', 'dave', '--config', config]).status).toBe(0);
    expect((await post('/login', { username: 'dave', password: PASSWORD })).status).toBe(401);
  });

  it('publishes a key rotated by the CLI after SIGHUP', async () => {
    const kids = async () => ((await (await fetch(`${httpBase}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const [rotated] = jsonLines(['keys', 'rotate']);
    server.kill('SIGHUP');
    await expect.poll(kids, { timeout: 10_000 }).toContain(String(rotated!.rotated));
  });
});
