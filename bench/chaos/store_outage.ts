/**
 * The store goes away under login load, and comes back:
 * - `lock`: another process holds the SQLite database's write lock (a backup, a stuck writer, a
 *   stalled network volume) while the server keeps running;
 * - `restart`: the server restarts gracefully (SIGTERM, drain, a new process on the same files and
 *   ports): with the embedded store, the store restarts with it.
 * Reports the error window seen by clients and asserts that every acknowledged login survived
 * (its refresh token still rotates afterwards) and that logins failed only around the outage.
 */
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { AUTHORIZATION_CHECK_PATH } from '../../src/extauthz/service.js';
import { addUser } from '../../src/issuer/users.js';
import { systemClock } from '../../src/lib/clock.js';
import { loadDevIssuer } from '../../src/tokens/index.js';
import { freePort, sleep } from '../lib/long_run.js';
import { startNodeLoad } from '../lib/load_grpc.js';
import { checkBytes } from '../lib/requests.js';
import { startPortcullis, type PortcullisOptions, type Target } from '../lib/target.js';
import { withStore } from '../token_scenarios.js';
import { describeLoad, type ExperimentResult } from './experiment.js';
import { errorWindow, loginLoad, lostLogins, PASSWORD } from './logins.js';

const POLICIES = new URL('../../policies', import.meta.url).pathname;
/** The server's SQLite busy timeout: a write waits this long for a lock before failing. */
const BUSY_TIMEOUT_MS = 5000;

export interface StoreOutageOptions {
  kind: 'lock' | 'restart';
  windowMs: number;
  beforeMs: number;
  outageMs: number;
  users: number;
  checkRate: number;
}

export async function storeOutage(o: StoreOutageOptions): Promise<ExperimentResult> {
  const config = (dir: string) =>
    [
      'observability: { logging: { level: info } }',
      `policies: { dir: ${POLICIES}, watch: false }`,
      `dev_issuer: { key_file: ${join(dir, 'dev-key.json')} }`,
      'token_module:',
      '  rate_limit: { login_per_minute: 0 }',
      '  lockout: { max_failures: 1000 }',
      'lifecycle: { drain_seconds: 2, shutdown_timeout_seconds: 10 }',
      '',
    ].join('\n');
  const addresses = { grpc: `127.0.0.1:${await freePort()}`, http: `127.0.0.1:${await freePort()}`, admin: `127.0.0.1:${await freePort()}` };
  const options: PortcullisOptions = { addresses, keepFiles: true };
  let target: Target = await startPortcullis(config, options);
  const dir = target.dir;
  const base = `http://${addresses.http}`;
  try {
    const users = Array.from({ length: o.users }, (_, i) => `chaos-${i}`);
    await withStore(target, async (ctx) => {
      for (const username of users) await addUser(ctx, { username, password: PASSWORD, roles: ['viewer'] });
    });
    const dev = await loadDevIssuer({ issuer: 'urn:portcullis:dev', audience: 'portcullis', keyFile: join(dir, 'dev-key.json'), clock: systemClock });
    const checks = startNodeLoad({ address: addresses.grpc, path: AUTHORIZATION_CHECK_PATH, requests: [checkBytes('GET', '/documents/d1', await dev.mint({ sub: 'alice', roles: ['viewer'], ttlSeconds: 3600 }))], expect: 'allow', mode: 'open', rate: o.checkRate, durationMs: o.windowMs });
    const start = performance.now();
    const logins = loginLoad(() => base, users, start + o.windowMs);

    await sleep(o.beforeMs);
    const outageStart = performance.now();
    if (o.kind === 'lock') {
      const db = new Database(target.sqliteFile!);
      db.exec('BEGIN EXCLUSIVE');
      await sleep(o.outageMs);
      db.exec('COMMIT');
      db.close();
    } else {
      await target.stop();
      target = await startPortcullis(config, { ...options, reuse: { dir, kek: target.kek! } });
    }
    const outageEnd = performance.now();
    const outcomes = await logins;
    const checkLoad = await checks.done;

    const acknowledged = outcomes.filter((o) => o.ok);
    const lost = await lostLogins(base, acknowledged);
    const audit = new Database(target.sqliteFile!, { readonly: true });
    const audited = (audit.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'login.password' AND outcome = 'success'").get() as { n: number }).n;
    audit.close();
    const w = errorWindow(outcomes);
    // Writes already waiting when the lock goes may fail up to a busy timeout later; a restart refuses connections until the new process serves.
    const grace = (o.kind === 'lock' ? BUSY_TIMEOUT_MS : 0) + 2000;
    const stray = outcomes.filter((x) => !x.ok && (x.at < outageStart - 1000 || x.at > outageEnd + grace));
    const recovered = acknowledged.filter((x) => x.at > outageEnd + grace).length;
    const s = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);
    const failures = [
      ...(lost.length ? [`${lost.length} acknowledged logins lost: their refresh tokens were refused (${lost.slice(0, 3).join('; ')})`] : []),
      ...(stray.length ? [`${stray.length} logins failed outside the outage (${stray.slice(0, 3).map((x) => x.detail).join('; ')})`] : []),
      ...(recovered === 0 ? ['no login succeeded after the outage'] : []),
      ...(acknowledged.length === 0 ? ['no login succeeded at all'] : []),
    ];
    const details = [...new Set(outcomes.filter((x) => !x.ok).map((x) => x.detail))].slice(0, 4).join(', ');
    return {
      name: `store-${o.kind}`,
      lines: [
        o.kind === 'lock'
          ? `Another process held the SQLite write lock for ${o.outageMs / 1000} s, ${o.beforeMs / 1000} s into ${o.windowMs / 1000} s of login load (${o.users} users in parallel) with Checks at ${o.checkRate}/s.`
          : `The server restarted gracefully (SIGTERM with a 2 s drain, then a new process on the same store and ports: ${s(outageEnd - outageStart)} from signal to serving), ${o.beforeMs / 1000} s into ${o.windowMs / 1000} s of login load (${o.users} users in parallel) with Checks at ${o.checkRate}/s.`,
        `Logins: ${outcomes.length} attempted, ${acknowledged.length} acknowledged, ${w.failed} failed${details ? ` (${details})` : ''}; error window ${s(w.windowMs)} (from ${s(w.firstAt === undefined ? undefined : w.firstAt - outageStart)} to ${s(w.lastAt === undefined ? undefined : w.lastAt - outageStart)} after the outage began).`,
        `Acknowledged logins lost: ${lost.length} of ${acknowledged.length} (each refresh token rotated afterwards); audit rows of successful logins: ${audited}.`,
        describeLoad('Checks meanwhile', checkLoad),
      ],
      failures,
      data: { attempted: outcomes.length, acknowledged: acknowledged.length, failed: w.failed, errorWindowMs: w.windowMs, lost: lost.length, audited, outageMs: Math.round(outageEnd - outageStart), checks: checkLoad },
    };
  } finally {
    await target.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
