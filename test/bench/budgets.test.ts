import { describe, expect, it } from 'vitest';
import { evaluateBudgets, loadBudgets, type BudgetFile } from '../../bench/lib/budgets.js';

const file: BudgetFile = {
  relative: [
    { name: 'ratio', ratio: ['check/example/max.rate', 'floor/noop/max.rate'], min: 0.5 },
    { name: 'difference', difference: ['check/example/open-1000.p99', 'floor/noop/open-1000.p99'], max: 1 },
    { name: 'value', value: 'check/example/max.peakRssMb', max: 250 },
    { name: 'not run', value: 'check-cold/es256/max.rate', min: 1 },
  ],
  absolute: { box: [{ name: 'abs', value: 'check/example/open-1000.p99', max: 2 }] },
  reported: [
    { name: 'shown', ratio: ['check/example/max.rate', 'floor/noop/max.rate'] },
    { name: 'shown, not run', value: 'check-cold/es256/max.rate' },
  ],
};

const measured: Record<string, number> = {
  'check/example/max.rate': 4000,
  'floor/noop/max.rate': 10000,
  'check/example/open-1000.p99': 2.5,
  'floor/noop/open-1000.p99': 2,
  'check/example/max.peakRssMb': 180,
};

describe('benchmark budgets', () => {
  it('evaluates ratio, difference and value budgets and skips those whose scenarios did not run', () => {
    const out = evaluateBudgets(file, undefined, (ref) => measured[ref]);
    expect(out.map((o) => [o.name, o.status, o.value])).toEqual([
      ['ratio', 'fail', 0.4],
      ['difference', 'pass', 0.5],
      ['value', 'pass', 180],
      ['not run', 'skipped', undefined],
      ['shown', 'reported', 0.4],
      ['shown, not run', 'skipped', undefined],
    ]);
    expect(out[0]!.limit).toBe('>= 0.5');
    // A reported comparison has no limit and never fails a run.
    expect(out.find((o) => o.name === 'shown')).toMatchObject({ kind: 'reported', limit: '–' });
  });

  it('adds the absolute budgets of the named hardware profile only', () => {
    expect(evaluateBudgets(file, 'box', (ref) => measured[ref]).find((o) => o.kind === 'absolute')).toMatchObject({ name: 'abs', status: 'fail', value: 2.5 });
    expect(evaluateBudgets(file, undefined, (ref) => measured[ref]).filter((o) => o.kind === 'absolute')).toEqual([]);
    expect(() => evaluateBudgets(file, 'unknown', (ref) => measured[ref])).toThrow(/no absolute budgets for hardware profile "unknown"/);
  });

  it('parses the committed bench/budgets.yaml', () => {
    const budgets = loadBudgets(new URL('../../bench/budgets.yaml', import.meta.url).pathname);
    expect(budgets.relative.length).toBeGreaterThanOrEqual(6);
    expect(budgets.relative.map((b) => b.name)).toContain('check max throughput >= 0.5 x floor');
  });
});
