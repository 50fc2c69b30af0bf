/**
 * Fixed-memory latency histogram (log buckets, 25% apart from 0.05 ms to ~30 s) for the
 * report's charts, and percentiles from the samples themselves: exact while an endpoint has at
 * most SAMPLES_MAX of them, then from a uniform reservoir of that many (Vitter's algorithm R,
 * with a fixed-seed generator so that a replay gives the same report). Bucket edges alone put
 * a percentile up to 25 % high (a 305 ms answer reported as 376 ms).
 */

/** Most exact samples kept per histogram (8 bytes each; grown as samples come). */
export const SAMPLES_MAX = 4096;

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
  private readonly samples: number[] = [];
  private sorted = true;
  private rnd = 0x9e3779b9;

  add(ms: number): void {
    if (!(ms >= 0)) return;
    if (this.samples.length < SAMPLES_MAX) this.samples.push(ms);
    else {
      // reservoir: keep each of the n+1 samples with probability SAMPLES_MAX / (n+1)
      this.rnd ^= this.rnd << 13;
      this.rnd ^= this.rnd >>> 17;
      this.rnd ^= this.rnd << 5;
      const j = (this.rnd >>> 0) % (this.n + 1);
      if (j < SAMPLES_MAX) this.samples[j] = ms;
    }
    this.sorted = false;
    let i = ms < LAT_BASE_MS ? 0 : 1 + Math.floor(Math.log(ms / LAT_BASE_MS) / Math.log(LAT_RATIO));
    if (i >= LAT_BUCKETS) i = LAT_BUCKETS - 1;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.n++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** The q-quantile (0..1) in ms: the nearest-rank sample (of the reservoir beyond SAMPLES_MAX). */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    if (this.samples.length > 0) {
      if (!this.sorted) {
        this.samples.sort((a, b) => a - b);
        this.sorted = true;
      }
      const k = this.samples.length;
      return this.samples[Math.min(k - 1, Math.max(0, Math.ceil(q * k) - 1))] as number;
    }
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
