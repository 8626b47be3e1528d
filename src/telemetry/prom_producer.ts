import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { AggregationTemporality, DataPointType, type MetricData, type MetricProducer } from '@opentelemetry/sdk-metrics';
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';
import type { MetricsSource } from './metrics.js';

type PromMetric = MetricObjectWithValues<MetricValue<string> | MetricValueWithName<string>>;

/** OTel unit from the Prometheus unit suffix of a catalog name. */
function unitOf(name: string): string {
  return name.endsWith('_seconds') ? 's' : name.endsWith('_bytes') ? 'By' : '';
}

function attributesOf(labels: Partial<Record<string, string | number>>, without?: string): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) if (k !== without && v !== undefined) out[k] = String(v);
  return out;
}

const keyOf = (attrs: Attributes) => JSON.stringify(Object.entries(attrs).sort(([a], [b]) => (a < b ? -1 : 1)));

/** One histogram data point per label set: Prometheus' cumulative `le` buckets become OTel's per-bucket counts. */
function histogramPoints(m: PromMetric, startTime: HrTime, endTime: HrTime) {
  const series = new Map<string, { attributes: Attributes; bounds: Array<[number, number]>; sum: number; count: number }>();
  for (const v of m.values as Array<MetricValueWithName<string>>) {
    const attributes = attributesOf(v.labels, 'le');
    const key = keyOf(attributes);
    let s = series.get(key);
    if (!s) series.set(key, (s = { attributes, bounds: [], sum: 0, count: 0 }));
    if (v.metricName?.endsWith('_bucket')) s.bounds.push([v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), v.value]);
    else if (v.metricName?.endsWith('_sum')) s.sum = v.value;
    else if (v.metricName?.endsWith('_count')) s.count = v.value;
  }
  return [...series.values()].map(({ attributes, bounds, sum, count }) => {
    bounds.sort((a, b) => a[0] - b[0]);
    const finite = bounds.filter(([le]) => le !== Infinity);
    const counts = finite.map(([, c], i) => c - (i > 0 ? finite[i - 1]![1] : 0));
    counts.push(count - (finite.length ? finite[finite.length - 1]![1] : 0));
    return { startTime, endTime, attributes, value: { buckets: { boundaries: finite.map(([le]) => le), counts }, sum, count } };
  });
}

function toMetricData(m: PromMetric, startTime: HrTime, endTime: HrTime): MetricData | undefined {
  const descriptor = { name: m.name, description: m.help, unit: unitOf(m.name), valueType: ValueType.DOUBLE };
  const points = () => m.values.map((v) => ({ startTime, endTime, attributes: attributesOf(v.labels), value: v.value }));
  switch (String(m.type)) {
    case 'counter':
      return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points() };
    case 'gauge':
      return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints: points() };
    case 'histogram':
      return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints: histogramPoints(m, startTime, endTime) };
    default:
      // Summaries have no OTLP counterpart with the same meaning; the catalog declares none.
      return undefined;
  }
}

/**
 * The prom-client registry as an OpenTelemetry MetricProducer: the catalog's instruments stay the
 * only ones on the hot path, and each OTLP collection converts a snapshot of them (counters to
 * cumulative monotonic sums, gauges, histograms with the catalog's buckets). Nothing is recorded
 * twice, so OTLP export adds no cost per decision.
 */
export function createPromMetricProducer(registry: MetricsSource, scopeName = 'portcullis'): MetricProducer {
  const startTime = hrTime();
  return {
    async collect() {
      const snapshot = (await registry.getMetricsAsJSON()) as PromMetric[];
      const endTime = hrTime();
      const metrics = snapshot.map((m) => toMetricData(m, startTime, endTime)).filter((d): d is MetricData => d !== undefined);
      // The reader keeps its SDK's resource (service.name) and takes only the scopes from here.
      return { resourceMetrics: { resource: undefined as never, scopeMetrics: [{ scope: { name: scopeName }, metrics }] }, errors: [] };
    },
  };
}
