import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';

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

const fileSchema = z.object({ relative: z.array(budget), absolute: z.record(z.string(), z.array(budget)).default({}) }).strict();

export type Budget = z.infer<typeof budget>;
export type BudgetFile = z.infer<typeof fileSchema>;

export interface BudgetOutcome {
  name: string;
  kind: 'relative' | 'absolute';
  value: number | undefined;
  limit: string;
  status: 'pass' | 'fail' | 'skipped';
}

export function loadBudgets(file: string): BudgetFile {
  return fileSchema.parse(parse(readFileSync(file, 'utf8')));
}

/** `lookup('check/example/max.rate')` returns the measured number, or undefined when not run. */
export function evaluateBudgets(file: BudgetFile, hardware: string | undefined, lookup: (ref: string) => number | undefined): BudgetOutcome[] {
  const absolute = hardware ? file.absolute[hardware] : undefined;
  if (hardware && !absolute) throw new Error(`bench/budgets.yaml has no absolute budgets for hardware profile "${hardware}"`);
  return [...file.relative.map((b) => evaluate(b, 'relative', lookup)), ...(absolute ?? []).map((b) => evaluate(b, 'absolute', lookup))];
}

function evaluate(b: Budget, kind: BudgetOutcome['kind'], lookup: (ref: string) => number | undefined): BudgetOutcome {
  let value: number | undefined;
  if (b.value) value = lookup(b.value);
  else {
    const [x, y] = (b.ratio ?? b.difference)!.map(lookup);
    if (x !== undefined && y !== undefined) value = b.ratio ? (y === 0 ? undefined : x / y) : x - y;
  }
  const limit = [b.min !== undefined ? `>= ${b.min}` : '', b.max !== undefined ? `<= ${b.max}` : ''].filter(Boolean).join(' and ');
  if (value === undefined) return { name: b.name, kind, value, limit, status: 'skipped' };
  const ok = (b.min === undefined || value >= b.min) && (b.max === undefined || value <= b.max);
  return { name: b.name, kind, value: Math.round(value * 1000) / 1000, limit, status: ok ? 'pass' : 'fail' };
}
