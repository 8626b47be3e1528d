import type { BudgetOutcome } from './budgets.js';
import type { LoadResult } from './load_grpc.js';

export interface PhaseResult extends LoadResult {
  scenario: string;
  variant: string;
  phase: string;
  mode: 'open' | 'closed';
  targetRate: number | undefined;
  concurrency: number | undefined;
  /** Server CPU seconds (user + system) per 1000 requests it answered in the phase (an open loop's unmeasured warm-up second included). */
  cpuPer1000: number;
  /** The part of cpuPer1000 spent on the servers' main threads (Node's event loops); absent for a peer not on Node. */
  loopCpuPer1000?: number;
  /** Portcullis targets: milliseconds per second of the phase the main thread stood still for GC (all kinds). */
  gcMsPerS?: number;
  /** Portcullis targets: mark-compacts during the phase. */
  majorGcs?: number;
  peakRssMb: number;
}

export interface BenchReport {
  timestamp: string;
  profile: string;
  generator: string;
  machine: { cpus: number; model: string; node: string; platform: string };
  /** How many times the scenarios ran; `results` holds per-phase medians when more than once. */
  rounds?: number;
  results: PhaseResult[];
  /** Each round's own results (only with more than one round). */
  roundResults?: PhaseResult[][];
  budgets: BudgetOutcome[];
  notes: string[];
}

export function markdown(r: BenchReport): string {
  const lines = [
    `# Benchmark ${r.timestamp}`,
    '',
    `Profile \`${r.profile}\`${(r.rounds ?? 1) > 1 ? `, ${r.rounds} rounds (latencies pooled, other fields medians)` : ''}, generator \`${r.generator}\`, ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}.`,
    '',
    '| scenario | variant | phase | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | CPU s/1000 | event loop CPU s/1000 | GC pause ms/s | mark-compacts | peak RSS MB |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.results.map((p) => `| ${p.scenario} | ${p.variant} | ${p.phase} | ${p.rate} | ${p.p50} | ${p.p90} | ${p.p99} | ${p.p999} | ${p.max} | ${p.errors} | ${p.cpuPer1000} | ${p.loopCpuPer1000 ?? '–'} | ${p.gcMsPerS ?? '–'} | ${p.majorGcs ?? '–'} | ${p.peakRssMb} |`),
    '',
    '| budget | kind | value | limit | result |',
    '| --- | --- | ---: | --- | --- |',
    ...r.budgets.map((b) => `| ${b.name} | ${b.kind} | ${b.value ?? '–'}${b.rounds && b.rounds.length > 1 ? ` (${b.pooled ? 'pooled; rounds ' : ''}${b.rounds.join(', ')})` : ''} | ${b.limit} | ${b.status === 'fail' ? '**FAIL**' : b.status} |`),
  ];
  if (r.notes.length) lines.push('', ...r.notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

const SERIES = [
  { key: 'p50', color: '#4c78a8' },
  { key: 'p99', color: '#f58518' },
  { key: 'p999', color: '#e45756' },
] as const;

/** Latency percentiles per scenario phase, log scale, one row each. */
export function svgChart(r: BenchReport): string {
  const rows = r.results;
  const rowH = 26;
  const left = 330;
  const width = 940;
  const plotW = width - left - 30;
  const top = 50;
  const height = top + rows.length * rowH + 50;
  const values = rows.flatMap((p) => SERIES.map((s) => p[s.key])).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 0.1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 1))));
  const x = (v: number) => left + (plotW * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">Check latency by scenario (ms, log scale) — ${esc(r.timestamp)}</text>`,
  ];
  for (let d = lo; d <= hi; d *= 10) {
    parts.push(`<line x1="${x(d)}" y1="${top - 5}" x2="${x(d)}" y2="${top + rows.length * rowH}" stroke="#ddd"/>`, `<text x="${x(d)}" y="${top + rows.length * rowH + 15}" text-anchor="middle">${d}</text>`);
  }
  rows.forEach((p, i) => {
    const y = top + i * rowH;
    const label = `${p.scenario}/${p.variant} ${p.phase} (${p.rate}/s)`;
    parts.push(`<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(label)}</text>`);
    SERIES.forEach((s, k) => {
      parts.push(`<rect x="${left}" y="${y + 3 + k * 7}" width="${Math.max(1, x(p[s.key]) - left)}" height="6" fill="${s.color}"><title>${s.key} ${p[s.key]} ms</title></rect>`);
    });
  });
  SERIES.forEach((s, k) => {
    const lx = left + k * 90;
    parts.push(`<rect x="${lx}" y="${height - 22}" width="12" height="12" fill="${s.color}"/>`, `<text x="${lx + 16}" y="${height - 12}">${s.key === 'p999' ? 'p99.9' : s.key}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
