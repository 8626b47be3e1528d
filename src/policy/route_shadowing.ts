import type { Route, RouteTable } from './routes.js';

/**
 * Routes that can never match because an earlier route matches every request they would:
 * its methods include theirs and its path template covers theirs segment by segment.
 */
export function shadowedRoutes(table: RouteTable): string[] {
  const problems: string[] = [];
  table.routes.forEach((later, i) => {
    const earlier = table.routes.slice(0, i).find((r) => covers(r, later));
    if (earlier) problems.push(`${later.position} routes.${later.index}: unreachable: "${later.template}" is shadowed by routes.${earlier.index} "${earlier.template}" (${earlier.position})`);
  });
  return problems;
}

function covers(a: Route, b: Route): boolean {
  if (a.methods !== '*' && (b.methods === '*' || [...b.methods].some((m) => !(a.methods as ReadonlySet<string>).has(m)))) return false;
  for (let i = 0; i < a.segments.length; i++) {
    const s = a.segments[i]!;
    if (s.kind === 'rest') return true;
    const t = b.segments[i];
    if (!t || t.kind === 'rest') return false;
    if (s.kind === 'literal' && (t.kind !== 'literal' || t.value !== s.value)) return false;
  }
  return a.segments.length === b.segments.length;
}
