import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Serving } from '../../src/grpc/health.js';
import { checkHealth } from '../../src/grpc/health_client.js';
import { BIN, freePort, runCli } from '../helpers/cli_server.js';
import { makeKey, startJwksServer, type JwksServer } from '../helpers/jwks_server.js';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

const work = tempDir('pc-startup');
const LOOPBACK = { PORTCULLIS_GRPC_ADDRESS: '127.0.0.1:0', PORTCULLIS_ADMIN_ADDRESS: '127.0.0.1:0', PORTCULLIS_HTTP_ADDRESS: '127.0.0.1:0', PORTCULLIS_LOG_LEVEL: 'silent' };
const serve = (env: Record<string, string>, config?: string) => runCli(['serve', ...(config ? ['--config', config] : [])], { ...LOOPBACK, PORTCULLIS_SQLITE_FILE: join(work, `db-${Math.random()}.db`), ...env });
/** File permissions do not stop root: as root, the permission case runs the CLI as `nobody` in a folder `nobody` owns. */
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

describe('start-up refusals (exit code and one clear line on stderr, before anything listens)', { timeout: 60_000 }, () => {
  it('refuses a bad lifecycle section with exit code 2, naming the key', () => {
    const file = join(work, 'bad-lifecycle.yaml');
    writeFileSync(file, 'lifecycle:\n  drain_seconds: -1\n  shutdown_timeout_seconds: 0\n  grace: 3\n');
    const r = serve({}, file);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('lifecycle.drain_seconds');
    expect(r.stderr).toContain('lifecycle.shutdown_timeout_seconds');
    expect(r.stderr).toMatch(/Unrecognized key.*grace/);
  });

  it('refuses a policy folder that does not exist', () => {
    const r = serve({ PORTCULLIS_POLICIES_DIR: join(work, 'nowhere') });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`portcullis: cannot start: cannot read policy folder ${join(work, 'nowhere')}: ENOENT: no such file or directory, stat '${join(work, 'nowhere')}'\n`);
  });

  it('refuses a policy file it cannot read, naming the file', () => {
    const dir = join(work, 'unreadable-file');
    cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
    rmSync(join(dir, 'rbac.cedar'));
    mkdirSync(join(dir, 'rbac.cedar'));
    const r = serve({ PORTCULLIS_POLICIES_DIR: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`portcullis: cannot start: cannot read policy file ${join(dir, 'rbac.cedar')}: not a regular file`);
  });

  it('refuses a policy folder and a policy file without read permission', () => {
    const home = tempDir('pc-startup-perm');
    const dir = join(home, 'no-permission');
    cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
    if (isRoot) for (const path of [home, dir, join(dir, 'rbac.cedar')]) chownSync(path, NOBODY, NOBODY);
    const as = isRoot ? { uid: NOBODY, gid: NOBODY, cwd: home } : undefined;
    const env = { ...LOOPBACK, PORTCULLIS_SQLITE_FILE: join(home, 'db.db'), PORTCULLIS_POLICIES_DIR: dir };
    chmodSync(join(dir, 'rbac.cedar'), 0o000);
    const file = runCli(['serve'], env, undefined, as);
    expect(file.status).toBe(1);
    expect(file.stderr).toContain(`cannot read policy file ${join(dir, 'rbac.cedar')}: EACCES`);
    chmodSync(dir, 0o000);
    const folder = runCli(['serve'], env, undefined, as);
    chmodSync(dir, 0o755);
    expect(folder.status).toBe(1);
    expect(folder.stderr).toContain(`cannot read policy folder ${dir}: EACCES`);
  });

  it('refuses a SQLite store whose schema is newer than this build, and leaves it untouched', () => {
    const file = join(work, 'newer.db');
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.exec('CREATE TABLE from_the_future (x)');
    db.close();
    const r = serve({ PORTCULLIS_POLICIES_DIR: EXAMPLE_POLICIES, PORTCULLIS_SQLITE_FILE: file });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^portcullis: SQLite store ${file} has schema version 99, newer than this build knows \\(\\d+\\); refusing to run an older Portcullis against it\\n$`));
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(99);
    expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: 'from_the_future' }]);
    after.close();
  });
});

describe('readiness during start-up', { timeout: 90_000 }, () => {
  let jwks: JwksServer;
  afterAll(async () => jwks?.close());

  it('answers /ready 503 (started: false) until every listener is up and gRPC health is SERVING, never 200 before', async () => {
    // A slow identity provider keeps start-up waiting on the first key load, with the public listener already up.
    jwks = await startJwksServer();
    jwks.keys = [(await makeKey('k1')).publicJwk];
    jwks.mode = 'slow';
    jwks.delayMs = 2500;
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const config = join(work, 'slow-idp.yaml');
    writeFileSync(
      config,
      `grpc: { address: "127.0.0.1:${grpcPort}" }\nadmin: { address: "127.0.0.1:0" }\nhttp: { address: "127.0.0.1:${httpPort}" }\npolicies: { dir: ${EXAMPLE_POLICIES}, watch: false }\nstore: { sqlite_file: ${join(work, 'ready.db')} }\ndev_issuer: { key_file: ${join(work, 'ready-dev.json')} }\nissuers:\n  - issuer: ${jwks.issuer}\n    jwks_uri: ${jwks.jwksUri}\n`,
    );
    const child = spawn(process.execPath, [BIN, 'serve', '--config', config], { stdio: 'ignore', env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'silent' } });
    try {
      const seen: Array<{ status: number; started?: boolean }> = [];
      let healthAtFirstReady: Serving | undefined;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && healthAtFirstReady === undefined) {
        const res = await fetch(`http://127.0.0.1:${httpPort}/ready`).catch(() => undefined);
        if (res) {
          const body = (await res.json()) as { checks: { started: boolean } };
          seen.push({ status: res.status, started: body.checks.started });
          if (res.status === 200) healthAtFirstReady = await checkHealth(`127.0.0.1:${grpcPort}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(healthAtFirstReady).toBe(Serving.SERVING);
      const notReady = seen.filter((s) => s.status === 503);
      expect(notReady.length).toBeGreaterThan(0);
      expect(notReady.every((s) => s.started === false)).toBe(true);
      expect(seen.findIndex((s) => s.status === 200)).toBe(seen.length - 1);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
