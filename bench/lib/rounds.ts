import { pooled, summarize } from './latency.js';
import type { PhaseResult } from './report.js';

/** Fields summarized by their median over rounds. */
const MEDIAN_FIELDS = ['requests', 'rate', 'cpuPer1000', 'peakRssMb'] as const;
/** Latency fields: pooled over the rounds where every round kept its histogram, else their median. */
export const LATENCY_FIELDS = ['p50', 'p90', 'p99', 'p999', 'max'] as const;
/** Fields only some targets report: the median of the rounds that have them. */
const OPTIONAL_MEDIAN_FIELDS = ['answered', 'loopCpuPer1000', 'gcMsPerS', 'majorGcs'] as const;

/** The middle value (the mean of the two middle ones for an even count); undefined for none. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
const key = (r: PhaseResult) => `${r.scenario}/${r.variant}/${r.phase}`;

/**
 * One row per phase from several rounds of the same scenarios. Latency percentiles come from all
 * the rounds' requests pooled (their histograms added), so a tail percentile is one of many more
 * samples instead of the middle of a few noisy ones: at 1000 req/s a 2 s phase (quick profile) decides its
 * p99 by its 20 slowest requests, which one GC pause can fill. Where a generator keeps no histogram
 * (autocannon), and for every other field, the median over the rounds that ran the phase (field by
 * field, so rate and CPU may come from different rounds). Errors are summed and their samples
 * kept, so an error in any round still fails the run.
 */
export function medianResults(rounds: readonly (readonly PhaseResult[])[]): PhaseResult[] {
  const groups = new Map<string, PhaseResult[]>();
  for (const round of rounds) {
    for (const row of round) {
      const list = groups.get(key(row));
      if (list) list.push(row);
      else groups.set(key(row), [row]);
    }
  }
  return [...groups.values()].map((rows) => {
    const merged: PhaseResult = { ...rows[0]!, errors: rows.reduce((n, r) => n + r.errors, 0), errorSamples: rows.flatMap((r) => r.errorSamples).slice(0, 5) };
    for (const field of MEDIAN_FIELDS) merged[field] = round3(median(rows.map((r) => r[field]))!);
    const histograms = rows.flatMap((r) => (r.histogram === undefined ? [] : [r.histogram]));
    if (histograms.length === rows.length) Object.assign(merged, summarize(pooled(histograms)));
    else {
      for (const field of LATENCY_FIELDS) merged[field] = round3(median(rows.map((r) => r[field]))!);
      delete merged.histogram;
    }
    for (const field of OPTIONAL_MEDIAN_FIELDS) {
      const value = median(rows.flatMap((r) => (r[field] === undefined ? [] : [r[field]])));
      if (value !== undefined) merged[field] = round3(value);
    }
    if (rows.some((r) => r.exhausted)) merged.exhausted = true;
    return merged;
  });
}
