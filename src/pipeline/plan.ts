import type { PolicyJson } from '../policy/index.js';

/**
 * A small condition tree for applications (documented in the README):
 *   {op: 'and'|'or', args: [...]}, {op: 'not', args: [x]}, {op: 'eq'|'neq'|'lt'|'lte'|'gt'|'gte'|'in'|'contains'|..., args: [l, r]},
 *   {op: 'has', attr, of}, {op: 'is', type, of}, {attr, of}, {var}, {value}, {entity: {type, id}}, {cedar} (anything else, as Cedar JSON).
 * Boolean constants are folded; `resource is <the planned type>` is true.
 */
export type Condition =
  | { op: 'and' | 'or' | 'not'; args: Condition[] }
  | { op: string; args: Condition[] }
  | { op: 'has'; attr: string; of: Condition }
  | { op: 'is'; type: string; of: Condition }
  | { attr: string; of: Condition }
  | { var: string }
  | { value: unknown }
  | { entity: { type: string; id: string } }
  | { cedar: unknown };

const BINARY: Record<string, string> = {
  '==': 'eq', '!=': 'neq', '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte', in: 'in',
  contains: 'contains', containsAll: 'containsAll', containsAny: 'containsAny', '+': 'add', '-': 'sub', '*': 'mul',
};

const TRUE: Condition = { value: true };
const FALSE: Condition = { value: false };

/** The whole plan: allowed where some permit residual holds and no forbid residual does. */
export function planCondition(residuals: Record<string, PolicyJson>, resourceType: string): Condition {
  const of = (effect: 'permit' | 'forbid') => or(Object.values(residuals).filter((p) => p.effect === effect).map((p) => policyCondition(p, resourceType)));
  return and([of('permit'), not(of('forbid'))]);
}

function policyCondition(p: PolicyJson, resourceType: string): Condition {
  return and(p.conditions.map((c) => (c.kind === 'when' ? expr(c.body, resourceType) : not(expr(c.body, resourceType)))));
}

function expr(e: unknown, resourceType: string): Condition {
  const node = e as Record<string, any>;
  if ('Value' in node) {
    const v = node.Value;
    return v && typeof v === 'object' && '__entity' in v ? { entity: v.__entity } : { value: v };
  }
  if ('Var' in node) return { var: node.Var };
  if ('unknown' in node) return { var: String(node.unknown?.[0]?.Value ?? 'unknown') };
  if ('&&' in node) return and([expr(node['&&'].left, resourceType), expr(node['&&'].right, resourceType)]);
  if ('||' in node) return or([expr(node['||'].left, resourceType), expr(node['||'].right, resourceType)]);
  if ('!' in node) return not(expr(node['!'].arg, resourceType));
  if ('.' in node) return { attr: node['.'].attr, of: expr(node['.'].left, resourceType) };
  if ('has' in node) return { op: 'has', attr: String(node.has.attr), of: expr(node.has.left, resourceType) };
  if ('is' in node) {
    const of = expr(node.is.left, resourceType);
    if ('var' in of && of.var === 'resource' && !node.is.in) return node.is.entity_type === resourceType ? TRUE : FALSE;
    return { op: 'is', type: node.is.entity_type, of };
  }
  if ('if-then-else' in node) {
    const { if: c, then: t, else: f } = node['if-then-else'];
    const cond = expr(c, resourceType);
    return or([and([cond, expr(t, resourceType)]), and([not(cond), expr(f, resourceType)])]);
  }
  for (const [key, op] of Object.entries(BINARY)) if (key in node) return { op, args: [expr(node[key].left, resourceType), expr(node[key].right, resourceType)] };
  return { cedar: e };
}

const isConst = (c: Condition, v: boolean) => 'value' in c && c.value === v;

function and(args: Condition[]): Condition {
  const kept = args.filter((a) => !isConst(a, true));
  if (kept.some((a) => isConst(a, false))) return FALSE;
  return kept.length === 0 ? TRUE : kept.length === 1 ? kept[0]! : { op: 'and', args: kept };
}

function or(args: Condition[]): Condition {
  const kept = args.filter((a) => !isConst(a, false));
  if (kept.some((a) => isConst(a, true))) return TRUE;
  return kept.length === 0 ? FALSE : kept.length === 1 ? kept[0]! : { op: 'or', args: kept };
}

function not(a: Condition): Condition {
  if (isConst(a, true)) return FALSE;
  if (isConst(a, false)) return TRUE;
  return { op: 'not', args: [a] };
}
