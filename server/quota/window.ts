import { DateTime, IANAZone } from 'luxon';
import { BoundedMemo } from '../util/bounded-memo.js';

/** How a budget's usage is grouped in time. */
export type WindowSpec =
  | { kind: 'day' | 'week' | 'month'; timeZone: string }
  | { kind: 'rolling'; hours: number }
  | { kind: 'total' };

export type CalendarKind = 'day' | 'week' | 'month';

/**
 * One counting bucket of a window, in epoch milliseconds, `end` exclusive.
 * A calendar window is one bucket; a `total` window is one bucket that never ends;
 * a rolling window is made of ROLLING_BUCKETS buckets (see `rollingBuckets`).
 */
export interface Bucket {
  start: number;
  end: number | null;
}

/**
 * A rolling window of N hours is counted in 60 buckets of N minutes, so reading it costs 60 counter
 * rows whatever the traffic. Usage leaves the window one bucket at a time: the window at `now`
 * covers between N hours minus one bucket and N hours.
 */
export const ROLLING_BUCKETS = 60;

export const isValidTimeZone = (timeZone: string): boolean => IANAZone.isValidZone(timeZone);

/** `period` identifies a budget within its scope: one budget per scope and period. */
export const windowPeriod = (window: WindowSpec): string =>
  window.kind === 'rolling' ? `rolling:${window.hours}h` : window.kind;

const calendarCache = new Map<string, Bucket>();

/**
 * The calendar window containing `now`. Computed on instants, not wall-clock arithmetic, so DST
 * changes and zones whose midnight is skipped get windows of 23 or 25 hours that start at the first
 * instant of the local day. Weeks start on Monday (ISO).
 */
export function calendarWindow(kind: CalendarKind, timeZone: string, now: number): Bucket {
  const cacheKey = `${kind}|${timeZone}`;
  const cached = calendarCache.get(cacheKey);
  if (cached && cached.start <= now && now < (cached.end as number)) return cached;
  const local = DateTime.fromMillis(now, { zone: timeZone });
  if (!local.isValid) throw new RangeError(`unknown time zone "${timeZone}"`);
  const bucket = {
    start: local.startOf(kind).toMillis(),
    end: local.endOf(kind).toMillis() + 1,
  };
  calendarCache.set(cacheKey, bucket);
  return bucket;
}

export const rollingBucketMs = (hours: number): number => hours * 60_000;

/** The buckets of a rolling window at `now`, oldest first; the last one contains `now`. */
export function rollingBuckets(hours: number, now: number): Bucket[] {
  const size = rollingBucketMs(hours);
  const current = Math.floor(now / size) * size;
  const buckets: Bucket[] = [];
  for (let i = ROLLING_BUCKETS - 1; i >= 0; i--) {
    const start = current - i * size;
    buckets.push({ start, end: start + size });
  }
  return buckets;
}

/** The bucket a usage recorded at `now` is counted in. */
export function bucketAt(window: WindowSpec, now: number): Bucket {
  switch (window.kind) {
    case 'total':
      return { start: 0, end: null };
    case 'rolling': {
      const size = rollingBucketMs(window.hours);
      const start = Math.floor(now / size) * size;
      return { start, end: start + size };
    }
    default:
      return calendarWindow(window.kind, window.timeZone, now);
  }
}

/** Every bucket that makes up the window at `now`. */
export function bucketsAt(window: WindowSpec, now: number): Bucket[] {
  return window.kind === 'rolling' ? rollingBuckets(window.hours, now) : [bucketAt(window, now)];
}

/**
 * How long a counter bucket stays useful: a calendar bucket until its window ends, a rolling bucket
 * until it has slid out of every window that contains it, a total bucket forever (null).
 */
export function bucketRetiresAt(window: WindowSpec, bucket: Bucket): number | null {
  if (window.kind === 'rolling') return bucket.start + ROLLING_BUCKETS * rollingBucketMs(window.hours);
  return bucket.end;
}

/**
 * When the window's usage next goes down. Calendar windows reset at their end, `total` never does;
 * a rolling window sheds its oldest used bucket, so pass the start of the oldest bucket that has
 * usage (null when nothing is used: there is nothing to reset).
 */
export function nextResetAt(window: WindowSpec, now: number, oldestUsedBucketStart: number | null = null): number | null {
  switch (window.kind) {
    case 'total':
      return null;
    case 'rolling':
      return oldestUsedBucketStart === null
        ? null
        : oldestUsedBucketStart + ROLLING_BUCKETS * rollingBucketMs(window.hours);
    default:
      return calendarWindow(window.kind, window.timeZone, now).end;
  }
}

/**
 * A window's nominal length, for ranking budgets that are equally used: the longer window holds a
 * user back longer. `total` is endless.
 */
export function windowSpanMs(window: WindowSpec): number {
  const HOUR = 3_600_000;
  switch (window.kind) {
    case 'total':
      return Infinity;
    case 'rolling':
      return window.hours * HOUR;
    case 'day':
      return 24 * HOUR;
    case 'week':
      return 7 * 24 * HOUR;
    case 'month':
      return 31 * 24 * HOUR;
  }
}

const formatted = new BoundedMemo<string, string>(10_000);

/**
 * An instant as ISO 8601 with the offset of the budget's time zone (UTC for rolling and total).
 * Remembered: a window's reset instant is formatted on every status read, and a zone's offset
 * costs an Intl look-up.
 */
export function formatInstant(epochMs: number, window: WindowSpec): string {
  const zone = window.kind === 'day' || window.kind === 'week' || window.kind === 'month' ? window.timeZone : 'UTC';
  return formatted.through(`${epochMs}|${zone}`, () => {
    const iso = DateTime.fromMillis(epochMs, { zone }).toISO({ suppressMilliseconds: true });
    if (iso === null) throw new RangeError(`cannot format ${epochMs} in ${zone}`);
    return iso;
  });
}
