import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { LATENCY_FIELDS, median } from './rounds.js';

const ref = z.string().regex(/^[\w-]+\/[\w-]+\/[\w-]+\.\w+$/, 'scenario/variant/phase.field');
const budget = z
  .object({
    name: z.string(),
    ratio: z.tuple([ref, ref]).optional(),
    difference: z.tuple([ref, ref]).optional(),
    value: ref.optional(),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .strict()
  .refine((b) => [b.ratio, b.difference, b.value].filter(Boolean).length === 1, 'one of ratio, difference, value')
  .refine((b) => b.min !== undefined || b.max !== undefined, 'min or max');

/** A comparison reported beside the budgets and never enforced: no limit. */
const reported = z
  .object({ name: z.string(), ratio: z.tuple([ref, ref]).optional(), difference: z.tuple([ref, ref]).optional(), value: ref.optional() })
  .strict()
  .refine((b) => [b.ratio, b.difference, b.value].filter(Boolean).length === 1, 'one of ratio, difference, value');

const fileSchema = z.object({ relative: z.array(budget), absolute: z.record(z.string(), z.array(budget)).default({}), reported: z.array(reported).default([]) }).strict();

export type Budget = z.infer<typeof budget>;
type Reported = z.infer<typeof reported>;
export type BudgetFile = z.infer<typeof fileSchema>;

export interface BudgetOutcome {
  name: string;
  /** 'reported': a comparison shown beside the budgets, with no limit (status 'reported' or 'skipped'). */
  kind: 'relative' | 'absolute' | 'reported';
  /** The measured value; with several rounds, the median of the rounds' values, or the pooled value (see `pooled`). */
  value: number | undefined;
  limit: string;
  status: 'pass' | 'fail' | 'skipped' | 'reported';
  /** Each round's value (only when the run had more than one round). */
  rounds?: number[];
  /** The value is computed from the rounds' requests pooled (latency budgets), not the median of `rounds`. */
  pooled?: boolean;
}

export function loadBudgets(file: string): BudgetFile {
  return fileSchema.parse(parse(readFileSync(file, 'utf8')));
}

type Lookup = (ref: string) => number | undefined;

/** `lookup('check/example/max.rate')` returns the measured number, or undefined when not run. */
export function evaluateBudgets(file: BudgetFile, hardware: string | undefined, lookup: Lookup): BudgetOutcome[] {
  return evaluateBudgetsOverRounds(file, hardware, [lookup]);
}

/**
 * Budgets over several rounds of the same scenarios, one lookup per round: each budget is computed
 * within each round (a ratio pairs two measurements taken minutes apart, not tens of minutes) and
 * judged by the median of those values, so one disturbed round on a noisy machine decides nothing.
 * A budget on latency percentiles only is judged instead on the rounds pooled, when `pooledLookup`
 * has every phase it names (their histograms were kept): a percentile of all the rounds' requests
 * is steadier than the middle of a few per-round percentiles. Each round's value is listed either way.
 */
export function evaluateBudgetsOverRounds(file: BudgetFile, hardware: string | undefined, lookups: readonly Lookup[], pooledLookup?: Lookup): BudgetOutcome[] {
  const absolute = hardware ? file.absolute[hardware] : undefined;
  if (hardware && !absolute) throw new Error(`bench/budgets.yaml has no absolute budgets for hardware profile "${hardware}"`);
  const judge = (b: Budget | Reported, kind: BudgetOutcome['kind']): BudgetOutcome => {
    const values = lookups.map((lookup) => measure(b, lookup)).filter((v): v is number => v !== undefined);
    const pooledValue = lookups.length > 1 && pooledLookup && refs(b).every((r) => (LATENCY_FIELDS as readonly string[]).includes(r.slice(r.lastIndexOf('.') + 1))) ? measure(b, pooledLookup) : undefined;
    const outcome = verdict(b, kind, pooledValue ?? median(values));
    if (lookups.length === 1 || values.length === 0) return outcome;
    return { ...outcome, rounds: values.map(round3), ...(pooledValue === undefined ? {} : { pooled: true }) };
  };
  return [...file.relative.map((b) => judge(b, 'relative')), ...(absolute ?? []).map((b) => judge(b, 'absolute')), ...file.reported.map((b) => judge(b, 'reported'))];
}

const refs = (b: Budget | Reported): string[] => (b.value ? [b.value] : [...(b.ratio ?? b.difference)!]);

function measure(b: Budget | Reported, lookup: Lookup): number | undefined {
  if (b.value) return lookup(b.value);
  const [x, y] = (b.ratio ?? b.difference)!.map(lookup);
  if (x === undefined || y === undefined) return undefined;
  return b.ratio ? (y === 0 ? undefined : x / y) : x - y;
}

function verdict(b: Budget | Reported, kind: BudgetOutcome['kind'], value: number | undefined): BudgetOutcome {
  if (kind === 'reported') return { name: b.name, kind, value: value === undefined ? undefined : round3(value), limit: '–', status: value === undefined ? 'skipped' : 'reported' };
  const { min, max } = b as Budget;
  const limit = [min !== undefined ? `>= ${min}` : '', max !== undefined ? `<= ${max}` : ''].filter(Boolean).join(' and ');
  if (value === undefined) return { name: b.name, kind, value, limit, status: 'skipped' };
  const ok = (min === undefined || value >= min) && (max === undefined || value <= max);
  return { name: b.name, kind, value: round3(value), limit, status: ok ? 'pass' : 'fail' };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
