/**
 * A latency histogram with a fixed footprint: 1 µs buckets up to 10 ms, 100 µs buckets up to 10 s, one
 * overflow bucket. A million samples cost nothing to keep, and histograms from several processes merge.
 */
const FINE_US = 10_000;
const COARSE_STEP_US = 100;
const COARSE_BUCKETS = (10_000_000 - FINE_US) / COARSE_STEP_US;
const BUCKETS = FINE_US + COARSE_BUCKETS + 1;

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  maxUs = 0;

  record(us: number): void {
    const v = us < 0 ? 0 : us;
    const i = v < FINE_US ? Math.floor(v) : Math.min(BUCKETS - 1, FINE_US + Math.floor((v - FINE_US) / COARSE_STEP_US));
    this.counts[i]!++;
    this.count++;
    if (v > this.maxUs) this.maxUs = v;
  }

  /** The smallest bucket value at or below which `q` of the samples lie, in µs. */
  quantileUs(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i < FINE_US ? i + 0.5 : FINE_US + (i - FINE_US + 0.5) * COARSE_STEP_US;
    }
    return this.maxUs;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      p50Ms: this.quantileUs(0.5) / 1000,
      p99Ms: this.quantileUs(0.99) / 1000,
      maxMs: this.count === 0 ? Number.NaN : this.maxUs / 1000,
    };
  }

  /** Non-empty buckets as [index, count] pairs: small enough to send between processes. */
  toSparse(): { buckets: [number, number][]; maxUs: number } {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, maxUs: this.maxUs };
  }

  static fromSparse(s: { buckets: [number, number][]; maxUs: number }): Histogram {
    const h = new Histogram();
    for (const [i, n] of s.buckets) {
      h.counts[i] = n;
      h.count += n;
    }
    h.maxUs = s.maxUs;
    return h;
  }
}
