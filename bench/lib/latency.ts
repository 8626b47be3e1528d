import * as hdr from 'hdr-histogram-js';

/** Latency percentiles of a phase in milliseconds, and the histogram they came from. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /**
   * Every latency of the phase (microseconds), HdrHistogram's compressed base64: rounds of the same
   * phase are pooled from it. Absent where the load generator reports percentiles only (autocannon).
   */
  histogram?: string;
}

/** An empty histogram of microseconds, 1 µs to 120 s at 3 significant digits. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

const ms = (micros: number) => Math.round(micros) / 1000;

/** The percentiles (in ms) of a histogram of microseconds, with the histogram encoded alongside. */
export function summarize(histogram: hdr.Histogram): LatencySummary {
  return {
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    histogram: hdr.encodeIntoCompressedBase64(histogram),
  };
}

/** All latencies of several encoded histograms together. */
export function pooled(encoded: readonly string[]): hdr.Histogram {
  const all = latencyHistogram();
  for (const e of encoded) all.add(hdr.decodeFromCompressedBase64(e));
  return all;
}
