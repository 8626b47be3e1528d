/**
 * `npm run soak -- [--duration 10m] [--rate 2000] [--interval 10s] [--warmup 15s] [--tokens 64]
 *                  [--token-every 2s] [--rotate-every 60s] [--rss-growth 15] [--out DIR]`
 *
 * Sustained Envoy Check load (open loop, Node generator) on the built server, with a rotating set of
 * access tokens from its own token module (one replaced every --token-every) and signing-key
 * rotations through the admin API (each pre-published, then signing), after a closed-loop warm-up
 * (8 in flight; the JIT, the token and decision caches). Prints one row per interval
 * (rate, errors, latency percentiles, RSS, V8 heap) and a summary; exits 1 when a Check failed, a
 * token fetch or rotation failed, or RSS grew more than --rss-growth % after the first minute.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { createCheckClient } from '../src/extauthz/client.js';
import { AUTHORIZATION_CHECK_PATH } from '../src/extauthz/service.js';
import { addClient } from '../src/issuer/clients.js';
import { count, durationMs, every, fatal, memory, option, type MemorySample } from './lib/long_run.js';
import { runNodeLoad, startNodeLoad, type LoadResult } from './lib/load_grpc.js';
import { checkBytes } from './lib/requests.js';
import { startPortcullis } from './lib/target.js';
import { withStore } from './token_scenarios.js';

const args = process.argv.slice(2);
const DURATION = durationMs(args, 'duration', '10m', 10_000, 4 * 3_600_000);
const RATE = count(args, 'rate', 2000, 1, 20_000);
const INTERVAL = durationMs(args, 'interval', '10s', 1000, 600_000);
const WARMUP = durationMs(args, 'warmup', '15s', 0, 600_000);
const TOKENS = count(args, 'tokens', 64, 1, 10_000);
const TOKEN_EVERY = durationMs(args, 'token-every', '2s', 100, 3_600_000);
const ROTATE_EVERY = durationMs(args, 'rotate-every', '60s', 5000, 3_600_000);
const RSS_GROWTH = count(args, 'rss-growth', 15, 1, 1000);
const OUT = option(args, 'out') ?? new URL('./results', import.meta.url).pathname;
if (INTERVAL > DURATION) fatal('--interval must not exceed --duration');

const POLICIES = new URL('../policies', import.meta.url).pathname;
const ADMIN_KEY = randomBytes(24).toString('base64url');
const config = () =>
  [
    'observability: { logging: { level: info } }',
    `policies: { dir: ${POLICIES}, watch: false }`,
    'dev_issuer: { enabled: false }',
    `admin: { api_key: ${ADMIN_KEY} }`,
    'token_module:',
    '  key_rotation: { prepublish_seconds: 5, reload_seconds: 5 }',
    'lifecycle: { drain_seconds: 0 }',
    '',
  ].join('\n');

process.stderr.write(`soak: ${DURATION / 1000} s at ${RATE} Checks/s, ${TOKENS} tokens (one replaced every ${TOKEN_EVERY / 1000} s), key rotation every ${ROTATE_EVERY / 1000} s\n`);
const target = await startPortcullis(config);
const started = performance.now();
const seconds = () => Math.round((performance.now() - started) / 100) / 10;
let exitCode = 1;
try {
  const { secret } = await withStore(target, (ctx) => addClient(ctx, { clientId: 'soak', type: 'confidential', grantTypes: ['client_credentials'], redirectUris: [], scopes: ['read'], roles: ['viewer'], firstParty: false }));
  const basic = `Basic ${Buffer.from(`soak:${secret}`).toString('base64')}`;
  const kids = new Set<string>();
  const fetchToken = async () => {
    const res = await fetch(`http://${target.http}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, body: 'grant_type=client_credentials&scope=read', signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { access_token?: string };
    if (res.status !== 200 || !body.access_token) throw new Error(`token endpoint answered ${res.status}`);
    kids.add(String(decodeProtectedHeader(body.access_token).kid));
    return body.access_token;
  };
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) tokens.push(await fetchToken());
  const pool = () => tokens.map((t, i) => checkBytes('GET', `/documents/d${i % 50}`, t));

  const probe = createCheckClient(target.address);
  const answer = await probe.checkRaw(pool()[0]!);
  probe.close();
  if (answer.httpResponse.case !== 'okResponse') fatal('soak: the Check request is not allowed');

  const warmup = WARMUP ? await runNodeLoad({ address: target.address, path: AUTHORIZATION_CHECK_PATH, requests: pool(), expect: 'allow', mode: 'closed', concurrency: 8, durationMs: WARMUP }) : undefined;
  if (warmup) process.stderr.write(`  warm-up: ${warmup.rate}/s closed loop, errors ${warmup.errors}, p50 ${warmup.p50} p99 ${warmup.p99} ms\n`);
  const rows: Array<LoadResult & MemorySample> = [];
  const load = startNodeLoad({ address: target.address, path: AUTHORIZATION_CHECK_PATH, requests: pool(), expect: 'allow', mode: 'open', rate: RATE, durationMs: DURATION, intervalMs: INTERVAL }, (index, r) => {
    void memory(target.pid, target.admin!, ((index + 1) * INTERVAL) / 1000).then((m) => {
      rows.push({ ...r, ...m });
      process.stderr.write(`  ${String(m.t).padStart(6)} s  ${String(r.rate).padStart(5)}/s  errors ${r.errors}  p50 ${r.p50} p99 ${r.p99} max ${r.max} ms  RSS ${m.rssMb} MB  heap ${m.heapUsedMb}/${m.heapTotalMb} MB${r.errorSamples.length ? `  (${r.errorSamples[0]})` : ''}\n`);
    });
  });
  let next = 0;
  const replace = every(TOKEN_EVERY, async () => {
    tokens[next++ % TOKENS] = await fetchToken();
    load.setRequests(pool());
  });
  const rotate = every(ROTATE_EVERY, async () => {
    const res = await fetch(`http://${target.admin}/admin/keys/rotate`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) throw new Error(`key rotation answered ${res.status}`);
  });
  const total = await load.done;
  replace.stop();
  rotate.stop();
  const final = await memory(target.pid, target.admin!, seconds());
  rows.sort((a, b) => a.t - b.t);

  const at = (t: number) => rows.reduce((best, r) => (Math.abs(r.t - t) < Math.abs(best.t - t) ? r : best), rows[0]!);
  const baseline = DURATION >= 120_000 ? at(60) : undefined;
  const growth = baseline ? Math.round(((final.rssMb - baseline.rssMb) / baseline.rssMb) * 1000) / 10 : undefined;
  const failures = [
    ...(warmup?.errors ? [`${warmup.errors} Checks failed during the warm-up (${warmup.errorSamples.join('; ')})`] : []),
    ...(total.errors ? [`${total.errors} Checks failed (${total.errorSamples.join('; ')})`] : []),
    ...replace.failed.slice(0, 3).map((f) => `token fetch failed: ${f}`),
    ...rotate.failed.slice(0, 3).map((f) => `key rotation failed: ${f}`),
    ...(growth !== undefined && growth > RSS_GROWTH ? [`RSS grew ${growth} % after the first minute (limit ${RSS_GROWTH} %)`] : []),
  ];
  const report = {
    timestamp: new Date().toISOString(),
    settings: { durationSeconds: DURATION / 1000, rate: RATE, intervalSeconds: INTERVAL / 1000, warmupSeconds: WARMUP / 1000, tokens: TOKENS, tokenEverySeconds: TOKEN_EVERY / 1000, rotateEverySeconds: ROTATE_EVERY / 1000, rssGrowthLimitPercent: RSS_GROWTH },
    warmup,
    total,
    tokensFetched: TOKENS + replace.ok,
    keyRotations: rotate.ok,
    signingKeysSeen: kids.size,
    memory: { start: rows[0], middle: at(DURATION / 2000), end: final, baseline, rssGrowthPercent: growth },
    intervals: rows,
    failures,
  };
  mkdirSync(OUT, { recursive: true });
  const stem = join(OUT, `soak-${report.timestamp.replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const mem = (m: MemorySample | undefined) => (m ? `${m.rssMb} MB RSS, ${m.heapUsedMb} MB heap (t=${m.t} s)` : 'n/a');
  process.stdout.write(
    [
      `# Soak ${report.timestamp}`,
      '',
      ...(warmup ? [`Warm-up: ${WARMUP / 1000} s closed loop (8 in flight) at ${warmup.rate}/s, ${warmup.errors} errors.`] : []),
      `${DURATION / 1000} s at ${RATE} Checks/s: ${total.requests} answered at ${total.rate}/s, **${total.errors} errors**; latency p50 ${total.p50} ms, p90 ${total.p90} ms, p99 ${total.p99} ms, p99.9 ${total.p999} ms, max ${total.max} ms.`,
      `Tokens fetched: ${report.tokensFetched} (${replace.failed.length} failed); key rotations: ${rotate.ok} (${rotate.failed.length} failed); signing keys seen in tokens: ${kids.size}.`,
      `Memory: start ${mem(rows[0])}; middle ${mem(report.memory.middle)}; end ${mem(final)}; RSS growth after the first minute: ${growth === undefined ? 'n/a (run shorter than 2 minutes)' : `${growth} % (limit ${RSS_GROWTH} %)`}.`,
      '',
      failures.length ? `FAIL:\n${failures.map((f) => `- ${f}`).join('\n')}` : 'PASS',
      '',
      `soak: wrote ${stem}.json`,
      '',
    ].join('\n'),
  );
  exitCode = failures.length ? 1 : 0;
} finally {
  await target.stop();
}
process.exit(exitCode);
