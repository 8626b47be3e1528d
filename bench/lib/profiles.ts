import type { PhaseKind } from '../scenarios.js';

/** How long and at which rates a run measures. */
export interface Profile {
  name: string;
  /** Closed-loop warm-up before a variant's first phase when that is an open-loop one. */
  warmupMs: number;
  /**
   * Closed-loop warm-up before a variant whose first phase is max: long enough for V8 to have
   * optimized its hot path, as the open-loop phases before another variant's max phase have (with
   * 0.5 s, max-only variants measured 11-13 % below what they reached after 3 s, medians of three).
   */
  maxWarmupMs: number;
  phaseMs: number;
  /** Open-loop rates, req/s; the first is the one every latency budget reads. */
  rates: number[];
  /** Calls in flight in the closed-loop (max) phase. */
  maxConcurrency: number;
  /** Whether 'rates-in-full' variants run the whole rate sweep. */
  sweepAll: boolean;
  /** Whether variants marked `fullOnly` run (points on a curve no budget reads). */
  everyVariant: boolean;
}

export const PROFILES: Record<string, Profile> = {
  smoke: { name: 'smoke', warmupMs: 300, maxWarmupMs: 300, phaseMs: 700, rates: [200], maxConcurrency: 4, sweepAll: false, everyVariant: true },
  // ~2.3 minutes a round on a 2-core machine: 2 s phases (an open-loop phase adds h2load's warm-up second).
  quick: { name: 'quick', warmupMs: 500, maxWarmupMs: 2000, phaseMs: 2000, rates: [1000, 2500, 5000], maxConcurrency: 32, sweepAll: false, everyVariant: false },
  full: { name: 'full', warmupMs: 5000, maxWarmupMs: 5000, phaseMs: 15000, rates: [1000, 2500, 5000], maxConcurrency: 32, sweepAll: true, everyVariant: true },
};

export interface Phase {
  label: string;
  mode: 'open' | 'closed';
  rate?: number;
  concurrency?: number;
}

/** The phases a variant of this kind runs under a profile, in order (open-loop rates first, then max). */
export function phasesFor(kind: PhaseKind, profile: Profile): Phase[] {
  const max: Phase = { label: 'max', mode: 'closed', concurrency: profile.maxConcurrency };
  const open = (rate: number): Phase => ({ label: `open-${rate}`, mode: 'open', rate });
  if (kind === 'max') return [max];
  if (kind === 'open-1000+max' || (kind === 'rates-in-full' && !profile.sweepAll)) return [open(profile.rates[0]!), max];
  return [...profile.rates.map(open), max];
}

/** Whether a variant runs under a profile: every variant does, except `fullOnly` ones outside profiles that run them all. */
export function variantRuns(variant: { fullOnly?: boolean }, profile: Profile): boolean {
  return profile.everyVariant || !variant.fullOnly;
}

/** How long a variant whose phases are `phases` warms up before the first of them. */
export function warmupFor(phases: readonly Phase[], profile: Profile): number {
  return phases[0]?.mode === 'closed' ? profile.maxWarmupMs : profile.warmupMs;
}
