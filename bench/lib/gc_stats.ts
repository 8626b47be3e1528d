/**
 * Garbage collection of a Portcullis target during a phase, from its own Prometheus metrics
 * (prom-client's `nodejs_gc_duration_seconds`, which a PerformanceObserver fills with every pause
 * of the main thread): how long the event loop stood still for GC, and how many mark-compacts ran.
 * Mark-compacts under steady load mean garbage is reaching the old generation; their pauses
 * (tens of ms) are what a tail percentile catches.
 */
export interface GcTotals {
  /** Seconds of GC pauses so far, every kind (scavenges, mark-compact, incremental marking steps, weak callbacks). */
  pauseSeconds: number;
  /** Mark-compacts so far. */
  majorCount: number;
  /**
   * Checks answered with a gRPC error status so far (`auth_authz_errors_total`, `auth_authz_shed_total`):
   * h2load sees only the HTTP status, which is 200 for those, so the bench counts them from here.
   */
  failedChecks: number;
}

const SERIES = /^nodejs_gc_duration_seconds_(sum|count)\{([^}]*)\}\s+(\S+)$/;
const FAILED_CHECKS = /^auth_authz_(?:errors|shed)_total(?:\{[^}]*\})?\s+(\S+)$/;

/** The totals in a Prometheus text exposition; undefined when it has no GC series. */
export function readGcTotals(text: string): GcTotals | undefined {
  let found = false;
  const totals: GcTotals = { pauseSeconds: 0, majorCount: 0, failedChecks: 0 };
  for (const line of text.split('\n')) {
    const failed = FAILED_CHECKS.exec(line);
    if (failed) {
      const value = Number(failed[1]);
      if (Number.isFinite(value)) totals.failedChecks += value;
      continue;
    }
    const m = SERIES.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    found = true;
    if (m[1] === 'sum') totals.pauseSeconds += value;
    else if (/(^|,)kind="major"/.test(m[2]!)) totals.majorCount += value;
  }
  return found ? totals : undefined;
}

/** Scrapes the admin listener's `/metrics` (with workers: N, summed over the processes). */
export async function scrapeGcTotals(admin: string): Promise<GcTotals | undefined> {
  const res = await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET http://${admin}/metrics answered ${res.status}`);
  return readGcTotals(await res.text());
}
