/**
 * `npm run bench [-- --profile quick|full|smoke] [--scenario NAME ...] [--rounds N] [--generator auto|node|h2load]
 *                 [--hardware NAME] [--budgets FILE] [--out DIR] [--report-only]`
 *
 * Starts each scenario's server from the built code on loopback, warms it up, measures open-loop
 * rates and closed-loop max throughput with a bounded load, stops it; writes
 * `<out>/<timestamp>.{json,md,svg}` and exits 1 when a budget is exceeded or a phase had errors.
 * With `--rounds N` the scenarios run N times over; each phase is reported by the median of its
 * rounds and each budget is judged by the median of its per-round values.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { evaluateBudgetsOverRounds, loadBudgets } from './lib/budgets.js';
import { AUTHORIZATION_CHECK_PATH } from '../src/extauthz/service.js';
import { createCheckClient } from '../src/extauthz/client.js';
import { runNodeLoad, type LoadResult, type LoadSpec } from './lib/load_grpc.js';
import { h2loadAvailable, runH2load } from './lib/load_h2load.js';
import { runHttpLoad } from './lib/load_http.js';
import { markdown, svgChart, type BenchReport, type PhaseResult } from './lib/report.js';
import { medianResults } from './lib/rounds.js';
import { PROFILES, phasesFor, variantRuns, warmupFor } from './lib/profiles.js';
import { missingPeerNotes, SCENARIOS } from './scenarios.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
};
const options = (name: string) => args.flatMap((a, i) => (a === `--${name}` && args[i + 1] ? [args[i + 1]!] : []));

/** A path given on the command line, from where `npm run bench` was typed (npm runs scripts in the package root). */
const fromInvocation = (path: string) => resolve(process.env.INIT_CWD ?? process.cwd(), path);
const profileName = option('profile') ?? 'quick';
const profile = PROFILES[profileName];
if (!profile) fatal(`unknown profile "${profileName}" (${Object.keys(PROFILES).join(', ')})`);
const wanted = options('scenario');
for (const w of wanted) if (!SCENARIOS.some((s) => s.name === w)) fatal(`unknown scenario "${w}" (${SCENARIOS.map((s) => s.name).join(', ')})`);
const scenarios = SCENARIOS.filter((s) => wanted.length === 0 || wanted.includes(s.name));
/** Peers of the chosen scenarios that are not installed: reported, not an error (their budgets show as skipped). */
const missingPeers = missingPeerNotes(scenarios);
for (const m of missingPeers) process.stderr.write(`bench: ${m}\n`);
const fullOnly = scenarios.flatMap((s) => s.variants.filter((v) => !variantRuns(v, profile!)).map((v) => `${s.name}/${v.name}`));
const outDir = fromInvocation(option('out') ?? new URL('./results', import.meta.url).pathname);
const budgetsFile = fromInvocation(option('budgets') ?? new URL('./budgets.yaml', import.meta.url).pathname);
const budgets = (() => {
  try {
    return loadBudgets(budgetsFile);
  } catch (err) {
    fatal(`cannot read budgets from ${budgetsFile}: ${(err as Error).message}`);
  }
})();
const hardware = option('hardware');
if (hardware && !budgets.absolute[hardware]) fatal(`${budgetsFile} has no absolute budgets for hardware profile "${hardware}" (${Object.keys(budgets.absolute).join(', ') || 'none'})`);
/** Evaluate and report budgets but do not fail on them (phases with errors still fail). */
const reportOnly = args.includes('--report-only');
const roundsOption = option('rounds') ?? '1';
const rounds = Number(roundsOption);
if (!/^[1-9]$/.test(roundsOption)) fatal(`--rounds takes a whole number from 1 to 9, got "${roundsOption}"`);
const generatorChoice = option('generator') ?? 'auto';
if (!['auto', 'node', 'h2load'].includes(generatorChoice)) fatal(`unknown generator "${generatorChoice}" (auto, node, h2load)`);
const useH2load = generatorChoice === 'h2load' || (generatorChoice === 'auto' && h2loadAvailable());
if (generatorChoice === 'h2load' && !h2loadAvailable()) fatal('h2load is not installed (Debian package nghttp2-client)');
/** h2load when available (its C client leaves the cores to the server); the Node generator otherwise and for multi-request pools. */
const load = (spec: LoadSpec): Promise<LoadResult> => (useH2load && !spec.singleUse && spec.requests.length === 1 ? runH2load(spec) : runNodeLoad(spec));

/** Pool size per second for closed-loop phases of single-use scenarios: above any rate one process reaches here. */
const SINGLE_USE_CEILING_RPS = 8000;

/** Each round's phase results, in the order they ran. */
const roundResults: PhaseResult[][] = [];
const notes = new Set<string>();
const failures: string[] = [];
for (let round = 1; round <= rounds; round++) {
  const results: PhaseResult[] = [];
  roundResults.push(results);
  for (const scenario of scenarios) {
    for (const variant of scenario.variants.filter((v) => variantRuns(v, profile!))) {
      process.stderr.write(`bench: ${rounds > 1 ? `round ${round}/${rounds}: ` : ''}${scenario.name}/${variant.name}\n`);
      try {
        await runVariant(scenario, variant, results);
      } catch (err) {
        failures.push(`${rounds > 1 ? `round ${round}: ` : ''}${scenario.name}/${variant.name}: ${(err as Error).message}`);
        process.stderr.write(`bench: ${scenario.name}/${variant.name} failed: ${(err as Error).message}\n`);
      }
    }
  }
}

/** Runs one variant's phases, appending a result per phase to `results` (its round's). */
async function runVariant(scenario: (typeof SCENARIOS)[number], variant: (typeof SCENARIOS)[number]['variants'][number], results: PhaseResult[]): Promise<void> {
  const phases = phasesFor(variant.phases ?? scenario.phases, profile!);
  const warmupMs = warmupFor(phases, profile!);
  const run = await variant.start({ warmupMs, phaseMs: profile!.phaseMs });
  if (run.note) notes.add(`${scenario.name}/${variant.name}: ${run.note}`);
  try {
    const envoy = run.path === undefined;
    const base = { address: run.target.address, path: run.path ?? AUTHORIZATION_CHECK_PATH, requests: run.requests, expect: envoy && !run.denied ? ('allow' as const) : ('any' as const), ...(run.connections ? { connections: run.connections } : {}) };
    // Single-use requests: a fresh pool per phase, sized for the phase (open: its schedule; closed: a generous ceiling).
    const poolFor = (durationMs: number, rate?: number) => run.singleUse!(Math.ceil(((rate ?? run.singleUseCeilingRps ?? SINGLE_USE_CEILING_RPS) * durationMs) / 1000) + 100);
    const http = run.http;
    const measure = run.measure;
    // One phase of load, by the variant's kind: in-process, HTTP (autocannon) or gRPC.
    const phaseLoad = (mode: 'open' | 'closed', durationMs: number, rate?: number, concurrency?: number): Promise<LoadResult> =>
      measure
        ? measure(durationMs)
        : http
          ? runHttpLoad({ url: http.url, requests: http.requests, connections: concurrency === profile!.maxConcurrency ? (http.connections ?? concurrency) : (concurrency ?? 8), durationMs, ...(mode === 'open' && rate ? { rate } : {}) })
          : load({ ...base, mode, rate, concurrency, durationMs, ...(run.singleUse ? { requests: poolFor(durationMs, rate), singleUse: true } : {}) });
    if (!measure) await (run.verify ? run.verify() : verifySample(run.target.address, run.requests[0]!, run.denied));
    await phaseLoad('closed', warmupMs, undefined, 8);
    for (const phase of phases) {
      // GC totals are scraped outside the CPU window (a scrape costs the server CPU).
      const gc0 = await run.target.gcTotals?.();
      const started = performance.now();
      // Read in this order, the event loop's share can never exceed the whole.
      const cpu0 = run.target.cpuSeconds();
      const loop0 = run.target.loopCpuSeconds?.();
      const r = await phaseLoad(phase.mode, profile!.phaseMs, phase.rate, phase.concurrency);
      const died = run.target.exited?.();
      if (died) throw new Error(`${run.target.name} died during ${phase.label}: ${died}`);
      // A phase in which nothing completed measured nothing: never a pass.
      if (r.requests === 0 && r.errors === 0) Object.assign(r, { errors: 1, errorSamples: ['no request completed in the phase'] });
      const loop = loop0 === undefined ? undefined : run.target.loopCpuSeconds!() - loop0;
      const cpu = run.target.cpuSeconds() - cpu0;
      const phaseSeconds = (performance.now() - started) / 1000;
      const gc1 = gc0 && (await run.target.gcTotals?.());
      const gc = gc0 && gc1 ? { gcMsPerS: Math.round(((gc1.pauseSeconds - gc0.pauseSeconds) * 10_000) / phaseSeconds) / 10, majorGcs: gc1.majorCount - gc0.majorCount } : {};
      // Checks answered with a gRPC error status look like successes to h2load (HTTP 200): the server's count
      // decides (the Node generator reads every status itself, and autocannon loads HTTP endpoints).
      const viaH2load = useH2load && !measure && !http && !run.singleUse && run.requests.length === 1;
      const failedChecks = viaH2load && gc0 && gc1 ? gc1.failedChecks - gc0.failedChecks : 0;
      if (failedChecks > 0) Object.assign(r, { errors: r.errors + failedChecks, errorSamples: [...r.errorSamples, `${failedChecks} Checks answered with a gRPC error status (auth_authz_errors_total, auth_authz_shed_total)`] });
      // CPU over every request the server answered in the window, measured or not (an open loop's warm-up second).
      const answered = r.answered ?? r.requests;
      const per1000 = (seconds: number) => (answered ? Math.round((seconds / answered) * 1000 * 1000) / 1000 : 0);
      const result: PhaseResult = {
        scenario: scenario.name,
        variant: variant.name,
        phase: phase.label,
        mode: phase.mode,
        targetRate: phase.rate,
        concurrency: phase.concurrency,
        ...r,
        cpuPer1000: per1000(cpu),
        ...(loop === undefined ? {} : { loopCpuPer1000: per1000(loop) }),
        ...gc,
        peakRssMb: run.target.peakRssMb(),
      };
      results.push(result);
      if (r.exhausted) notes.add(`${scenario.name}/${variant.name}/${phase.label}: the single-use request pool ran out before the phase ended`);
      process.stderr.write(`  ${phase.label}: ${r.rate} req/s p50 ${r.p50} p99 ${r.p99} p99.9 ${r.p999} ms errors ${r.errors}${r.errorSamples.length ? ` (${r.errorSamples[0]})` : ''}\n`);
    }
  } finally {
    await run.target.stop();
    await run.cleanup?.();
  }
}

const lookupIn =
  (rows: readonly PhaseResult[]) =>
  (ref: string): number | undefined => {
    const [path, field] = ref.split('.') as [string, keyof PhaseResult];
    const [scenario, variant, phase] = path.split('/');
    const hit = rows.find((r) => r.scenario === scenario && r.variant === variant && r.phase === phase);
    const value = hit?.[field];
    return typeof value === 'number' ? value : undefined;
  };
const merged = rounds > 1 ? medianResults(roundResults) : roundResults[0]!;
/** The rounds pooled, for latency budgets: only phases whose every round kept its histogram. */
const pooledLookup = lookupIn(merged.filter((r) => r.histogram !== undefined));
const report: BenchReport = {
  timestamp: new Date().toISOString(),
  profile: profileName,
  generator: useH2load ? 'h2load (h2c; open loop over 10 connections on a 1 ms grid, closed loop over 1)' : 'node (worker thread, grpc-js, hdr-histogram-js)',
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform}-${process.arch}` },
  rounds,
  results: merged,
  ...(rounds > 1 ? { roundResults } : {}),
  budgets: evaluateBudgetsOverRounds(budgets, hardware, roundResults.map(lookupIn), pooledLookup),
  notes: [
    ...missingPeers,
    ...(fullOnly.length ? [`${profileName} profile: ${fullOnly.join(', ')} run in the full and smoke profiles only (no budget reads them)`] : []),
    ...(rounds > 1 ? [`${rounds} rounds: latency percentiles are over all the rounds' requests (their histograms pooled; autocannon phases: the median of the rounds), the other fields the median of the rounds field by field; a latency budget is judged on the pooled values, every other budget by the median of its per-round values (listed beside it)`] : []), ...notes, ...failures.map((f) => `FAILED ${f}`)],
};

mkdirSync(outDir, { recursive: true });
const stem = join(outDir, report.timestamp.replace(/[:.]/g, '-'));
writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(`${stem}.md`, markdown(report));
writeFileSync(`${stem}.svg`, svgChart(report));
process.stdout.write(markdown(report));
process.stdout.write(`\nbench: wrote ${stem}.json, .md and .svg\n`);

const failed = report.budgets.filter((b) => b.status === 'fail');
const withErrors = merged.filter((r) => r.errors > 0);
for (const b of failed) process.stderr.write(`bench: budget exceeded: ${b.name} (${b.value}, limit ${b.limit})\n`);
for (const r of withErrors) process.stderr.write(`bench: ${r.errors} errors in ${r.scenario}/${r.variant}/${r.phase}: ${r.errorSamples.join('; ')}\n`);
process.exit((failed.length && !reportOnly) || withErrors.length || failures.length ? 1 : 0);

/** Every load is checked through a real gRPC client first: its first request must be allowed, or denied with `denied` when given. */
async function verifySample(address: string, bytes: Uint8Array, denied?: number): Promise<void> {
  const client = createCheckClient(address);
  try {
    const res = await client.checkRaw(bytes);
    const body = res.httpResponse.case === 'deniedResponse' ? res.httpResponse.value.body : res.httpResponse.case;
    if (denied === undefined && res.httpResponse.case !== 'okResponse') throw new Error(`the scenario request is not allowed: ${body}`);
    if (denied !== undefined && (res.httpResponse.case !== 'deniedResponse' || res.httpResponse.value.status?.code !== denied)) {
      throw new Error(`the scenario request is not denied with ${denied}: ${body}`);
    }
  } finally {
    client.close();
  }
}

function fatal(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}
