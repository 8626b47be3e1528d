import { describe, expect, it } from 'vitest';
import { evaluateBudgetsOverRounds, type BudgetFile } from '../../bench/lib/budgets.js';
import type { PhaseResult } from '../../bench/lib/report.js';
import { latencyHistogram, summarize } from '../../bench/lib/latency.js';
import { median, medianResults } from '../../bench/lib/rounds.js';

const row = (phase: string, fields: Partial<PhaseResult>): PhaseResult => ({
  scenario: 'check',
  variant: 'example',
  phase,
  mode: 'closed',
  targetRate: undefined,
  concurrency: 32,
  requests: 1000,
  errors: 0,
  errorSamples: [],
  rate: 1000,
  p50: 1,
  p90: 2,
  p99: 3,
  p999: 4,
  max: 5,
  cpuPer1000: 0.1,
  peakRssMb: 200,
  ...fields,
});

describe('bench rounds', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([])).toBeUndefined();
    expect(median([7])).toBe(7);
    expect(median([9, 1, 5])).toBe(5);
    expect(median([4, 1, 3, 10])).toBe(3.5);
  });

  it('reports each phase by the median of each field over the rounds, in the order phases first ran', () => {
    const merged = medianResults([
      [row('open-1000', { p99: 9, rate: 998 }), row('max', { rate: 8000, p99: 4, peakRssMb: 230 })],
      [row('open-1000', { p99: 2, rate: 999 }), row('max', { rate: 5000, p99: 12, peakRssMb: 210 })],
      [row('open-1000', { p99: 3, rate: 997 }), row('max', { rate: 9000, p99: 6, peakRssMb: 260 })],
    ]);
    expect(merged.map((r) => r.phase)).toEqual(['open-1000', 'max']);
    expect(merged[0]).toMatchObject({ p99: 3, rate: 998 });
    // Field by field: the median rate, p99 and RSS come from three different rounds.
    expect(merged[1]).toMatchObject({ rate: 8000, p99: 6, peakRssMb: 230, errors: 0 });
  });

  it('takes the median of the event loop CPU and the GC figures over the rounds that report them, and leaves them out where none does', () => {
    const merged = medianResults([
      [row('max', { loopCpuPer1000: 0.05, gcMsPerS: 12.5, majorGcs: 0 }), row('open-1000', {})],
      [row('max', { gcMsPerS: 40.1, majorGcs: 3 }), row('open-1000', {})],
      [row('max', { loopCpuPer1000: 0.07, gcMsPerS: 20, majorGcs: 1 }), row('open-1000', {})],
    ]);
    expect(merged[0]).toMatchObject({ loopCpuPer1000: 0.06, gcMsPerS: 20, majorGcs: 1 });
    for (const field of ['loopCpuPer1000', 'gcMsPerS', 'majorGcs']) expect(merged[1]).not.toHaveProperty(field);
  });

  it('sums errors over the rounds and keeps their samples, so an error in one round still fails the run', () => {
    const merged = medianResults([[row('max', {})], [row('max', { errors: 2, errorSamples: ['status 14'] })], [row('max', {})]]);
    expect(merged[0]).toMatchObject({ errors: 2, errorSamples: ['status 14'] });
  });

  it('judges each budget by the median of its per-round values, each computed within its round', () => {
    const file: BudgetFile = {
      relative: [
        { name: 'ratio', ratio: ['check/example/max.rate', 'floor/noop/max.rate'], min: 0.5 },
        { name: 'only some rounds', value: 'check-cold/es256/max.rate', min: 100 },
        { name: 'never run', value: 'cerbos/default/max.rate', min: 1 },
      ],
      absolute: {},
      reported: [],
    };
    const rounds: Array<Record<string, number>> = [
      // Round 2 is disturbed: check alone ran slow. The ratios are 0.6, 0.3 and 0.55: median 0.55 passes.
      { 'check/example/max.rate': 6000, 'floor/noop/max.rate': 10000 },
      { 'check/example/max.rate': 3000, 'floor/noop/max.rate': 10000, 'check-cold/es256/max.rate': 50 },
      { 'check/example/max.rate': 5500, 'floor/noop/max.rate': 10000 },
    ];
    const out = evaluateBudgetsOverRounds(file, undefined, rounds.map((m) => (ref: string) => m[ref]));
    expect(out.map((o) => [o.name, o.status, o.value, o.rounds])).toEqual([
      ['ratio', 'pass', 0.55, [0.6, 0.3, 0.55]],
      ['only some rounds', 'fail', 50, [50]],
      ['never run', 'skipped', undefined, undefined],
    ]);
  });

  /** A phase's row as a histogram-keeping generator reports it: `fast` requests at 1 ms and `slow` at 2 ms (both exact in the histogram). */
  const measured = (phase: string, fast: number, slow: number): PhaseResult => {
    const h = latencyHistogram();
    h.recordValueWithCount(1_000, fast);
    if (slow) h.recordValueWithCount(2_000, slow);
    return row(phase, { requests: fast + slow, ...summarize(h) });
  };

  it('pools the latencies of the rounds from their histograms instead of taking the middle percentile', () => {
    // 4 s at 1000/s: 50 slow requests (one GC pause) make a round's p99 on their own.
    const rounds = [[measured('open-1000', 4000, 0)], [measured('open-1000', 3990, 10)], [measured('open-1000', 3950, 50)]];
    expect(rounds.map((r) => r[0]!.p99)).toEqual([1, 1, 2]);
    expect(rounds.map((r) => r[0]!.p999)).toEqual([1, 2, 2]);
    const [merged] = medianResults(rounds);
    // 60 slow of 12000: under 1 % (p99 fast) and over 0.1 % (p99.9 slow), whatever one round saw.
    expect(merged).toMatchObject({ p50: 1, p99: 1, p999: 2, max: 2, requests: 4000 });
    expect(merged!.histogram).toEqual(expect.any(String));
  });

  it('falls back to the median of each latency field when a round kept no histogram (autocannon)', () => {
    const [merged] = medianResults([[measured('max', 1000, 0)], [row('max', { p99: 1.5, max: 1.8 })], [measured('max', 950, 50)]]);
    // The middle round's numbers, which no pooled histogram of 1 ms and 2 ms requests could give.
    expect(merged).toMatchObject({ p99: 1.5, max: 1.8 });
    expect(merged).not.toHaveProperty('histogram');
  });

  it('judges a latency budget on the pooled rounds and every other budget by the median of its rounds', () => {
    const file: BudgetFile = {
      relative: [
        { name: 'p99 difference', difference: ['check/example/open-1000.p99', 'floor/noop/open-1000.p99'], max: 1 },
        { name: 'rate ratio', ratio: ['check/example/max.rate', 'floor/noop/max.rate'], min: 0.5 },
        { name: 'mixed', ratio: ['check/example/open-1000.p99', 'check/example/max.rate'], max: 1 },
      ],
      absolute: {},
      reported: [],
    };
    const rounds: Array<Record<string, number>> = [
      { 'check/example/open-1000.p99': 9, 'floor/noop/open-1000.p99': 2, 'check/example/max.rate': 6000, 'floor/noop/max.rate': 10000 },
      { 'check/example/open-1000.p99': 3, 'floor/noop/open-1000.p99': 8, 'check/example/max.rate': 4000, 'floor/noop/max.rate': 10000 },
      { 'check/example/open-1000.p99': 4, 'floor/noop/open-1000.p99': 2, 'check/example/max.rate': 5500, 'floor/noop/max.rate': 10000 },
    ];
    const pooledValues: Record<string, number> = { 'check/example/open-1000.p99': 3.5, 'floor/noop/open-1000.p99': 3, 'check/example/max.rate': 5500, 'floor/noop/max.rate': 10000 };
    const out = evaluateBudgetsOverRounds(file, undefined, rounds.map((m) => (ref: string) => m[ref]), (ref) => pooledValues[ref]);
    expect(out.map((o) => [o.name, o.status, o.value, o.rounds, o.pooled])).toEqual([
      // Per round 7, -5 and 2 (median 2 would fail); pooled 0.5 passes.
      ['p99 difference', 'pass', 0.5, [7, -5, 2], true],
      ['rate ratio', 'pass', 0.55, [0.6, 0.4, 0.55], undefined],
      // A budget that names a non-latency field is judged by its rounds.
      ['mixed', 'pass', 0.001, [0.002, 0.001, 0.001], undefined],
    ]);
    // A latency phase without a pooled value (its rounds kept no histogram) falls back to the median.
    const fallback = evaluateBudgetsOverRounds(file, undefined, rounds.map((m) => (ref: string) => m[ref]), () => undefined);
    expect(fallback[0]).toMatchObject({ value: 2, status: 'fail', rounds: [7, -5, 2] });
    expect(fallback[0]).not.toHaveProperty('pooled');
  });
});
