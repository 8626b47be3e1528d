/**
 * `npm run chaos -- [--only jwks,policies,store-lock,store-restart] [--rate 500] [--jwks-down 2m]
 *                   [--reload-window 60s] [--reload-every 3s] [--login-window 40s] [--store-outage 10s]
 *                   [--users 4] [--out DIR]`
 *
 * Fault experiments against the built server, each on its own process and bounded by its flags:
 * the JWKS endpoint down while cached keys serve, the policy folder reloaded every few seconds
 * under load, and the store going away under login load (its write lock held by another process;
 * the server restarted on the same store). Prints a report and exits 1 when an assertion failed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExperimentResult } from './chaos/experiment.js';
import { jwksOutage } from './chaos/jwks_outage.js';
import { policyReloads } from './chaos/policy_reloads.js';
import { storeOutage } from './chaos/store_outage.js';
import { count, durationMs, fatal, option } from './lib/long_run.js';

const args = process.argv.slice(2);
const EXPERIMENTS = ['jwks', 'policies', 'store-lock', 'store-restart'] as const;
const only = (option(args, 'only') ?? EXPERIMENTS.join(',')).split(',');
for (const name of only) if (!(EXPERIMENTS as readonly string[]).includes(name)) fatal(`chaos: unknown experiment "${name}" (${EXPERIMENTS.join(', ')})`);
const RATE = count(args, 'rate', 500, 1, 10_000);
const JWKS_DOWN = durationMs(args, 'jwks-down', '2m', 5000, 3_600_000);
const RELOAD_WINDOW = durationMs(args, 'reload-window', '60s', 5000, 3_600_000);
const RELOAD_EVERY = durationMs(args, 'reload-every', '3s', 500, 600_000);
const LOGIN_WINDOW = durationMs(args, 'login-window', '40s', 20_000, 3_600_000);
const STORE_OUTAGE = durationMs(args, 'store-outage', '10s', 1000, 600_000);
const USERS = count(args, 'users', 4, 1, 64);
const OUT = option(args, 'out') ?? new URL('./results', import.meta.url).pathname;
if (STORE_OUTAGE > LOGIN_WINDOW - 15_000) fatal('chaos: --store-outage must leave 15 s of --login-window (5 s before, 10 s after)');

const runs: Record<(typeof EXPERIMENTS)[number], () => Promise<ExperimentResult>> = {
  jwks: () => jwksOutage({ rate: RATE, downMs: JWKS_DOWN, beforeMs: 10_000, afterMs: 15_000 }),
  policies: () => policyReloads({ rate: RATE, windowMs: RELOAD_WINDOW, everyMs: RELOAD_EVERY }),
  'store-lock': () => storeOutage({ kind: 'lock', windowMs: LOGIN_WINDOW, beforeMs: 5000, outageMs: STORE_OUTAGE, users: USERS, checkRate: Math.min(RATE, 200) }),
  'store-restart': () => storeOutage({ kind: 'restart', windowMs: LOGIN_WINDOW, beforeMs: 5000, outageMs: 0, users: USERS, checkRate: Math.min(RATE, 200) }),
};

const results: ExperimentResult[] = [];
for (const name of EXPERIMENTS.filter((e) => only.includes(e))) {
  process.stderr.write(`chaos: ${name}\n`);
  try {
    results.push(await runs[name]());
  } catch (err) {
    results.push({ name, lines: [], failures: [`did not complete: ${(err as Error).message}`], data: {} });
  }
  const r = results.at(-1)!;
  for (const line of [...r.lines, ...r.failures.map((f) => `FAIL ${f}`)]) process.stderr.write(`  ${line}\n`);
}

const timestamp = new Date().toISOString();
const md = [`# Chaos ${timestamp}`, '', ...results.flatMap((r) => [`## ${r.name}: ${r.failures.length ? 'FAIL' : 'PASS'}`, '', ...r.lines.map((l) => `- ${l}`), ...r.failures.map((f) => `- **FAIL** ${f}`), ''])].join('\n');
mkdirSync(OUT, { recursive: true });
const stem = join(OUT, `chaos-${timestamp.replace(/[:.]/g, '-')}`);
writeFileSync(`${stem}.json`, `${JSON.stringify({ timestamp, results }, null, 2)}\n`);
process.stdout.write(`${md}\nchaos: wrote ${stem}.json\n`);
process.exit(results.some((r) => r.failures.length) ? 1 : 0);
