/**
 * Latencies of a benchmark in a fixed-size log-scale histogram: every bucket is 1% wider than
 * the one before, so any percentile is within 1% of the truth and memory does not grow with
 * the number of operations (HdrHistogram's idea, without its dependency).
 */

export const latencyLimits = Object.freeze({
  /** Bucket growth: a percentile is reported within this relative error. */
  bucketRatio: 1.01,
  /** Latencies are kept in microseconds from 1 us up to this bound (larger ones count here). */
  valueUsMax: 600_000_000,
});

const LOG_RATIO = Math.log(latencyLimits.bucketRatio);
const BUCKETS = Math.ceil(Math.log(latencyLimits.valueUsMax) / LOG_RATIO) + 1;

export interface LatencySummaryMs {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private sumUs = 0;
  private maxUs = 0;

  get count(): number {
    return this.total;
  }

  record(ms: number): void {
    const us = Math.min(Math.max(ms * 1_000, 1), latencyLimits.valueUsMax);
    this.counts[bucketOf(us)]! += 1;
    this.total += 1;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The latency (ms) that `fraction` (0..1) of the recorded ones do not exceed; 0 when empty. */
  percentileMs(fraction: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(fraction * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      // The bucket's upper edge, but never above the largest latency actually seen.
      if (seen >= rank) return Math.min(latencyLimits.bucketRatio ** (i + 1), this.maxUs) / 1_000;
    }
    return this.maxUs / 1_000;
  }

  summary(): LatencySummaryMs {
    return {
      p50: round3(this.percentileMs(0.5)),
      p99: round3(this.percentileMs(0.99)),
      p999: round3(this.percentileMs(0.999)),
      max: round3(this.maxUs / 1_000),
      mean: this.total === 0 ? 0 : round3(this.sumUs / this.total / 1_000),
    };
  }
}

function bucketOf(us: number): number {
  return Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_RATIO));
}

function round3(n: number): number {
  return Math.round(n * 1_000) / 1_000;
}
