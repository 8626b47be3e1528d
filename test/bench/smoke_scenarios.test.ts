import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/lib/report.js';
import { cerbosBinary } from '../../bench/peers/cerbos.js';
import { tempDir } from '../helpers/temp_dir.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const tsx = join(ROOT, 'node_modules/.bin/tsx');

// Its own file (smoke.test.ts has the rest): ~70 s of load that the test pool runs beside the other files.
describe('npm run bench, the remaining scenarios', () => {
  it('runs every other Envoy and app API scenario and the Cerbos peer end to end (smoke profile): each request checked once, then loaded with 0 errors', () => {
    const out = tempDir('pc-bench-out');
    const scenarios = ['check-cold', 'check-workers', 'check-traced', 'check-dpop', 'check-policies', 'app-batch', 'cerbos'];
    const r = spawnSync(tsx, ['bench/run.ts', '--profile', 'smoke', ...scenarios.flatMap((x) => ['--scenario', x]), '--generator', 'node', '--report-only', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    expect(report.results.map((x) => `${x.scenario}/${x.variant}/${x.phase}`)).toEqual([
      'check-workers/1-worker/open-200',
      'check-workers/1-worker/max',
      'check-workers/2-workers/open-200',
      'check-workers/2-workers/max',
      'check-traced/sample-10pct/open-200',
      'check-traced/sample-10pct/max',
      'check-policies/100/open-200',
      'check-policies/100/max',
      'check-policies/1000/open-200',
      'check-policies/1000/max',
      'check-policies/1000-unsliced/max',
      'check-cold/es256/max',
      'check-cold/rs256/max',
      'check-dpop/es256/open-200',
      'check-dpop/es256/max',
      // The peer when its binary (an optional dependency, Linux x64) is installed; a note naming it otherwise.
      ...(cerbosBinary() ? ['cerbos/default/open-200', 'cerbos/default/max', 'cerbos/1proc/open-200', 'cerbos/1proc/max'] : []),
      'app-batch/20-docs/max',
    ]);
    for (const x of report.results) {
      const name = `${x.scenario}/${x.variant}/${x.phase}`;
      expect(x.errors, `${name}: ${x.errorSamples.join('; ')}`).toBe(0);
      expect(x.requests, name).toBeGreaterThan(0);
      expect(x.p99, name).toBeGreaterThanOrEqual(x.p50);
      expect(x.cpuPer1000, name).toBeGreaterThan(0);
      expect(x.peakRssMb, name).toBeGreaterThan(10);
      // Node targets report their event loops' share; Cerbos (Go) does not.
      if (x.scenario === 'cerbos') expect(x.loopCpuPer1000, name).toBeUndefined();
      else expect(x.loopCpuPer1000, name).toBeGreaterThanOrEqual(0);
    }
    // 2 workers: a primary and two worker processes, their RSS summed (well above one process's).
    const rss = (variant: string) => report.results.find((x) => x.variant === variant && x.phase === 'max')!.peakRssMb;
    expect(rss('2-workers')).toBeGreaterThan(rss('1-worker') * 1.5);
    // The budget between two variants of this run is their ratio; budgets needing check/example are skipped.
    const rate = (scenario: string, variant: string) => report.results.find((x) => x.scenario === scenario && x.variant === variant && x.phase === 'max')!.rate;
    expect(report.budgets.find((b) => b.name === '2 cluster workers >= 1.2 x one process (4 connections)')).toMatchObject({ value: Math.round((rate('check-workers', '2-workers') / rate('check-workers', '1-worker')) * 1000) / 1000 });
    expect(report.budgets.find((b) => b.name === 'cold ES256 verification keeps >= 0.5 x check throughput')?.status).toBe('skipped');
    expect(report.notes.filter((n) => n.includes('peer not measured')).map((n) => n.slice(0, n.indexOf(':')))).toEqual(cerbosBinary() ? [] : ['cerbos']);
  }, 180_000);
});
