/**
 * Fixed-memory latency histogram (log buckets, 25% apart from 0.05 ms to ~30 s): counts,
 * percentiles within one bucket's width, and the buckets for the report's charts.
 */

/** Lower edge of bucket 0 in ms. */
export const LAT_BASE_MS = 0.05;
/** Ratio between consecutive bucket edges. */
export const LAT_RATIO = 1.25;
/** Number of buckets (the last takes everything above). */
export const LAT_BUCKETS = 60;

/** Lower edge (ms) of bucket i. */
export function bucketLow(i: number): number {
  return i <= 0 ? 0 : LAT_BASE_MS * LAT_RATIO ** (i - 1);
}

/** Percentiles and buckets of one side of one endpoint. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Counts per bucket (LAT_BUCKETS entries; bucket i covers [bucketLow(i), bucketLow(i+1)) ms). */
  buckets: number[];
}

export class LatencyHistogram {
  private readonly counts = new Array<number>(LAT_BUCKETS).fill(0);
  private n = 0;
  private maxMs = 0;

  add(ms: number): void {
    if (!(ms >= 0)) return;
    let i = ms < LAT_BASE_MS ? 0 : 1 + Math.floor(Math.log(ms / LAT_BASE_MS) / Math.log(LAT_RATIO));
    if (i >= LAT_BUCKETS) i = LAT_BUCKETS - 1;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.n++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** The q-quantile (0..1) in ms: the upper edge of the bucket holding it (capped by the max seen). */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < LAT_BUCKETS; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(this.maxMs, bucketLow(i + 1));
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    const r = (x: number): number => Math.round(x * 1000) / 1000;
    return {
      count: this.n,
      p50: r(this.quantile(0.5)),
      p90: r(this.quantile(0.9)),
      p99: r(this.quantile(0.99)),
      max: r(this.maxMs),
      buckets: [...this.counts],
    };
  }
}
