import { describe, expect, it } from 'vitest';
import { loadBudgets } from '../../bench/lib/budgets.js';
import { PROFILES, phasesFor, variantRuns, warmupFor } from '../../bench/lib/profiles.js';
import { cerbosBinary } from '../../bench/peers/cerbos.js';
import { missingPeerNotes, SCENARIOS } from '../../bench/scenarios.js';

const labels = (kind: Parameters<typeof phasesFor>[0], profile: string) => phasesFor(kind, PROFILES[profile]!).map((p) => p.label);

describe('bench profiles and phases', () => {
  it('run the rate sweep, the first rate, or max only, by the kind of variant', () => {
    expect(labels('rates', 'quick')).toEqual(['open-1000', 'open-2500', 'open-5000', 'max']);
    expect(labels('open-1000+max', 'quick')).toEqual(['open-1000', 'max']);
    expect(labels('max', 'full')).toEqual(['max']);
    const max = phasesFor('max', PROFILES.quick!)[0]!;
    expect(max).toMatchObject({ mode: 'closed', concurrency: 32 });
    expect(phasesFor('rates', PROFILES.quick!)[1]).toEqual({ label: 'open-2500', mode: 'open', rate: 2500 });
  });

  it('sweep the rates of a rates-in-full variant in the full profile only', () => {
    expect(labels('rates-in-full', 'full')).toEqual(['open-1000', 'open-2500', 'open-5000', 'max']);
    expect(labels('rates-in-full', 'quick')).toEqual(['open-1000', 'max']);
    expect(labels('rates-in-full', 'smoke')).toEqual(['open-200', 'max']);
  });

  it('sweep the rates of the floor and check/example in every profile; the variants past capacity on a small machine in full only', () => {
    const kinds = Object.fromEntries(SCENARIOS.flatMap((s) => s.variants.map((v) => [`${s.name}/${v.name}`, v.phases ?? s.phases])));
    expect(kinds['floor/noop']).toBe('rates');
    expect(kinds['check/example']).toBe('rates');
    for (const name of ['check/uncached', 'check-traced/sample-10pct']) expect(kinds[name], name).toBe('rates-in-full');
    // The peer runs check's rates in the full profile (the issue: same load generator, same rates); on one
    // core (~4.4k/s) 1000 req/s and max. Without its binary (an optional dependency) it has no variants.
    const cerbos = SCENARIOS.find((s) => s.name === 'cerbos')!;
    if (cerbosBinary()) {
      expect(kinds['cerbos/default']).toBe('rates-in-full');
      expect(kinds['cerbos/1proc']).toBe('open-1000+max');
    } else {
      expect(cerbos.variants).toEqual([]);
      expect(cerbos.missing).toHaveLength(1);
    }
    // Single-use proofs run on the Node generator, which counts an overflowing open loop as errors: never past 1000/s.
    expect(kinds['check-dpop/es256']).toBe('open-1000+max');
  });

  it('leave the fullOnly variants out of the quick profile only, and no budget reads one', () => {
    expect(variantRuns({ fullOnly: true }, PROFILES.quick!)).toBe(false);
    expect(variantRuns({ fullOnly: true }, PROFILES.full!)).toBe(true);
    expect(variantRuns({ fullOnly: true }, PROFILES.smoke!)).toBe(true);
    expect(variantRuns({}, PROFILES.quick!)).toBe(true);
    const fullOnly = SCENARIOS.flatMap((s) => s.variants.filter((v) => v.fullOnly).map((v) => `${s.name}/${v.name}/`));
    expect(fullOnly).toContain('check-policies/100/');
    const budgets = loadBudgets(new URL('../../bench/budgets.yaml', import.meta.url).pathname);
    const refs = [...budgets.relative, ...Object.values(budgets.absolute ?? {}).flat()].flatMap((b) => (b.value ? [b.value] : [...(b.ratio ?? b.difference ?? [])]));
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(fullOnly.some((v) => ref.startsWith(v)), ref).toBe(false);
  });

  it('run every phase a committed budget reads in the quick profile (a budget naming no phase would only ever be skipped)', () => {
    const budgets = loadBudgets(new URL('../../bench/budgets.yaml', import.meta.url).pathname);
    const quick = new Set(
      SCENARIOS.flatMap((s) => s.variants.filter((v) => variantRuns(v, PROFILES.quick!)).flatMap((v) => phasesFor(v.phases ?? s.phases, PROFILES.quick!).map((p) => `${s.name}/${v.name}/${p.label}`))),
    );
    // A peer that is not installed (Cerbos is an optional dependency) has no variants: its references may name nothing here.
    const missing = SCENARIOS.filter((s) => s.missing?.length).map((s) => `${s.name}/`);
    const fields = new Set(['rate', 'p50', 'p90', 'p99', 'p999', 'max', 'cpuPer1000', 'loopCpuPer1000', 'peakRssMb', 'errors', 'gcMsPerS', 'majorGcs']);
    const refs = [...budgets.relative, ...Object.values(budgets.absolute).flat(), ...budgets.reported].flatMap((b) => (b.value ? [b.value] : [...(b.ratio ?? b.difference ?? [])]));
    expect(budgets.reported.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      const [phase, field] = ref.split('.');
      expect(quick.has(phase!) || missing.some((m) => phase!.startsWith(m)), ref).toBe(true);
      expect(fields.has(field!), ref).toBe(true);
    }
  });

  it('name every peer that is not installed in a note, and nothing else', () => {
    expect(missingPeerNotes([{ name: 'floor' }, { name: 'cerbos', missing: ['Cerbos: not installed'] }, { name: 'token-client-credentials', missing: [] }])).toEqual(['cerbos: peer not measured: Cerbos: not installed']);
    // Here each scenario says so exactly when its peer's variant is absent.
    const cerbos = SCENARIOS.find((s) => s.name === 'cerbos')!;
    expect(cerbos.variants.length === 0).toBe((cerbos.missing ?? []).length === 1);
    const tokens = SCENARIOS.find((s) => s.name === 'token-client-credentials')!;
    expect(tokens.variants.some((v) => v.name === 'oidc-provider')).toBe(!tokens.missing?.length);
  });

  it('warm a variant whose first phase is max up for longer: its open-loop phases warm the others', () => {
    const quick = PROFILES.quick!;
    expect(warmupFor(phasesFor('max', quick), quick)).toBe(quick.maxWarmupMs);
    expect(warmupFor(phasesFor('open-1000+max', quick), quick)).toBe(quick.warmupMs);
    expect(warmupFor(phasesFor('rates', quick), quick)).toBe(quick.warmupMs);
    // Before its max phase, a variant with open-loop phases has run at least as long as a max-only variant's warm-up.
    const openLoopMs = phasesFor('open-1000+max', quick).filter((p) => p.mode === 'open').length * quick.phaseMs + quick.warmupMs;
    expect(openLoopMs).toBeGreaterThanOrEqual(quick.maxWarmupMs);
  });
});
