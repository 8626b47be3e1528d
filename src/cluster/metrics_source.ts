import { AggregatorRegistry, type Registry } from 'prom-client';
import type { MetricsSource } from '../telemetry/metrics.js';
import type { WorkerPool } from './pool.js';

/**
 * The primary's registry merged with the workers' snapshots: counters and histograms are summed,
 * gauges follow each metric's `aggregator` (sum unless the catalog says otherwise), so a scrape of
 * the admin listener sees the whole process tree as one.
 */
export function clusterMetricsSource(primary: Registry, pool: () => WorkerPool | undefined): MetricsSource {
  const merged = async () => {
    const workers = pool();
    if (!workers) return primary;
    const [own, others] = await Promise.all([primary.getMetricsAsJSON(), workers.collectMetrics()]);
    return AggregatorRegistry.aggregate([own, ...others] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
  };
  return {
    get contentType() {
      return primary.contentType;
    },
    metrics: async () => (await merged()).metrics(),
    getMetricsAsJSON: async () => (await merged()).getMetricsAsJSON(),
  } as MetricsSource;
}
