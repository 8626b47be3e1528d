/**
 * Reads a sample from a Prometheus text exposition (what `/metrics` of a spawned server serves):
 * the sum of every series of `name` whose labels include `labels`. 0 when no series matches (a
 * labelled counter has no series before its first increment).
 */
export function promSample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const seen = new Map<string, string>();
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) seen.set(k!, v!);
    if (Object.entries(labels).every(([k, v]) => seen.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

/** `promSample` of the `/metrics` an admin listener at `host:port` serves now. */
export async function scrape(admin: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`http://${admin}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics on ${admin}: HTTP ${res.status}`);
  return promSample(await res.text(), name, labels);
}
