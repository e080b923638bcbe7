import { bucketAt, rollingBuckets, type Bucket } from '../../quota/window.js';

interface Sums {
  tokens: number;
  micros: number;
}

interface UsedBucket extends Sums {
  start: number;
}

/** A bucket's counter, as the store reads it (from memory, its stored row, or the ledger). */
export type ReadBucket = (bucket: Bucket) => Sums;

/**
 * A rolling budget's settled usage over the window that ends with its `current` bucket, kept as the
 * window slides rather than summed again: when the current bucket moves on, the buckets that slid
 * out are subtracted and those that slid in are read and added, so a read costs the buckets that
 * changed instead of the window's sixty.
 *
 * Invariant: `used` holds every bucket of that window with usage, oldest first, at its counter's
 * value, and `tokens`/`micros` are their sums. The store keeps it by passing every settle into
 * `current` to `add`, and dropping the total when a settle lands in any other bucket.
 */
export class RollingTotal {
  private readonly hours: number;
  private current = -Infinity;
  private readonly used: UsedBucket[] = [];
  private usedTokens = 0;
  private usedMicros = 0;

  private constructor(hours: number) {
    this.hours = hours;
  }

  /** The window at `now`, summed over all its buckets: for a budget whose total is not known yet. */
  static sum(hours: number, now: number, read: ReadBucket): RollingTotal {
    const total = new RollingTotal(hours);
    total.readNewBuckets(rollingBuckets(hours, now), read);
    return total;
  }

  get tokens(): number {
    return this.usedTokens;
  }

  get micros(): number {
    return this.usedMicros;
  }

  /** Start of the oldest bucket with usage (the next reset sheds it); null when nothing is used. */
  get oldestUsed(): number | null {
    return this.used[0]?.start ?? null;
  }

  /**
   * Moves the window on to the one at `now`. Returns false when `now` is before the current bucket
   * (a clock that went back): the buckets that would slide in again are not kept, so sum instead.
   */
  slideTo(now: number, read: ReadBucket): boolean {
    const next = bucketAt({ kind: 'rolling', hours: this.hours }, now).start;
    if (next < this.current) return false;
    if (next === this.current) return true;
    const buckets = rollingBuckets(this.hours, now);
    const firstKept = (buckets[0] as Bucket).start;
    while (this.used[0] !== undefined && this.used[0].start < firstKept) {
      const out = this.used.shift() as UsedBucket;
      this.usedTokens -= out.tokens;
      this.usedMicros -= out.micros;
    }
    // Usually only the new current bucket, empty until a settle adds to it; but a settle recorded
    // at a later time than this total was summed at (clocks of concurrent requests) may be in any.
    this.readNewBuckets(buckets, read);
    return true;
  }

  /** A settle counted in the bucket starting at `bucketStart`. False when that is not the current bucket. */
  add(bucketStart: number, sums: Sums): boolean {
    if (bucketStart !== this.current) return false;
    if (sums.tokens === 0 && sums.micros === 0) return true;
    const last = this.used.at(-1);
    if (last?.start === bucketStart) {
      last.tokens += sums.tokens;
      last.micros += sums.micros;
    } else {
      this.used.push({ start: bucketStart, tokens: sums.tokens, micros: sums.micros });
    }
    this.usedTokens += sums.tokens;
    this.usedMicros += sums.micros;
    return true;
  }

  /** Reads the window's buckets after the current one, appends those with usage, and makes the last one current. */
  private readNewBuckets(window: readonly Bucket[], read: ReadBucket): void {
    for (const bucket of window) {
      if (bucket.start <= this.current) continue;
      const { tokens, micros } = read(bucket);
      if (tokens === 0 && micros === 0) continue;
      this.used.push({ start: bucket.start, tokens, micros });
      this.usedTokens += tokens;
      this.usedMicros += micros;
    }
    this.current = (window.at(-1) as Bucket).start;
  }
}
