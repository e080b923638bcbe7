import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  ROLLING_BUCKETS,
  bucketAt,
  bucketsAt,
  calendarWindow,
  formatInstant,
  isValidTimeZone,
  nextResetAt,
  rollingBuckets,
  windowPeriod,
  windowSpanMs,
  type CalendarKind,
  type WindowSpec,
} from './window.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MIN = 60_000;

const ms = (iso: string): number => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`bad test instant ${iso}`);
  return t;
};
const iso = (epochMs: number, zone: string): string | null => DateTime.fromMillis(epochMs, { zone }).toISO();

describe('calendarWindow: start and end in IANA zones', () => {
  // [kind, zone, now, expected start, expected end] — start/end are exact instants with offsets.
  it.each<[CalendarKind, string, string, string, string]>([
    // UTC
    ['day', 'UTC', '2024-05-15T13:45:00Z', '2024-05-15T00:00:00Z', '2024-05-16T00:00:00Z'],
    ['week', 'UTC', '2024-05-15T13:45:00Z', '2024-05-13T00:00:00Z', '2024-05-20T00:00:00Z'],
    ['month', 'UTC', '2024-05-15T13:45:00Z', '2024-05-01T00:00:00Z', '2024-06-01T00:00:00Z'],
    // Asia/Shanghai (+08:00): 2024-05-15T20:00Z is already the 16th locally
    ['day', 'Asia/Shanghai', '2024-05-15T20:00:00Z', '2024-05-16T00:00:00+08:00', '2024-05-17T00:00:00+08:00'],
    ['week', 'Asia/Shanghai', '2024-05-15T20:00:00Z', '2024-05-13T00:00:00+08:00', '2024-05-20T00:00:00+08:00'],
    ['month', 'Asia/Shanghai', '2026-11-15T00:00:00Z', '2026-11-01T00:00:00+08:00', '2026-12-01T00:00:00+08:00'],
    ['month', 'Asia/Shanghai', '2026-10-31T17:00:00Z', '2026-11-01T00:00:00+08:00', '2026-12-01T00:00:00+08:00'],
    // America/New_York: 2024-05-16T02:00Z is still the 15th locally (EDT, -04:00)
    ['day', 'America/New_York', '2024-05-16T02:00:00Z', '2024-05-15T00:00:00-04:00', '2024-05-16T00:00:00-04:00'],
    ['week', 'America/New_York', '2024-05-16T02:00:00Z', '2024-05-13T00:00:00-04:00', '2024-05-20T00:00:00-04:00'],
    ['month', 'America/New_York', '2024-06-01T03:59:59.999Z', '2024-05-01T00:00:00-04:00', '2024-06-01T00:00:00-04:00'],
    ['month', 'America/New_York', '2024-01-10T12:00:00Z', '2024-01-01T00:00:00-05:00', '2024-02-01T00:00:00-05:00'],
    // Europe/Berlin: month spanning the spring change starts at +01:00 and ends at +02:00
    ['day', 'Europe/Berlin', '2024-05-15T22:30:00Z', '2024-05-16T00:00:00+02:00', '2024-05-17T00:00:00+02:00'],
    ['month', 'Europe/Berlin', '2024-03-15T12:00:00Z', '2024-03-01T00:00:00+01:00', '2024-04-01T00:00:00+02:00'],
    ['week', 'Europe/Berlin', '2024-10-30T12:00:00Z', '2024-10-28T00:00:00+01:00', '2024-11-04T00:00:00+01:00'],
    // Australia/Lord_Howe: +10:30 standard, +11:00 summer
    ['day', 'Australia/Lord_Howe', '2024-07-01T12:00:00Z', '2024-07-01T00:00:00+10:30', '2024-07-02T00:00:00+10:30'],
    ['day', 'Australia/Lord_Howe', '2024-01-15T12:00:00Z', '2024-01-15T00:00:00+11:00', '2024-01-16T00:00:00+11:00'],
    ['month', 'Australia/Lord_Howe', '2024-10-15T00:00:00Z', '2024-10-01T00:00:00+10:30', '2024-11-01T00:00:00+11:00'],
    // Asia/Kolkata (+05:30)
    ['day', 'Asia/Kolkata', '2024-05-15T18:29:59.999Z', '2024-05-15T00:00:00+05:30', '2024-05-16T00:00:00+05:30'],
    ['day', 'Asia/Kolkata', '2024-05-15T18:30:00Z', '2024-05-16T00:00:00+05:30', '2024-05-17T00:00:00+05:30'],
    ['month', 'Asia/Kolkata', '2024-05-31T20:00:00Z', '2024-06-01T00:00:00+05:30', '2024-07-01T00:00:00+05:30'],
    // Pacific/Kiritimati (+14:00): 2024-05-15T10:00Z is already the 16th locally
    ['day', 'Pacific/Kiritimati', '2024-05-15T10:00:00Z', '2024-05-16T00:00:00+14:00', '2024-05-17T00:00:00+14:00'],
    ['week', 'Pacific/Kiritimati', '2024-05-19T10:00:00Z', '2024-05-20T00:00:00+14:00', '2024-05-27T00:00:00+14:00'],
    ['month', 'Pacific/Kiritimati', '2024-05-31T10:00:00Z', '2024-06-01T00:00:00+14:00', '2024-07-01T00:00:00+14:00'],
    // America/Sao_Paulo 2018-11-04: 00:00 local never happened (clocks jumped to 01:00 -02:00 = 03:00Z)
    ['day', 'America/Sao_Paulo', '2018-11-04T12:00:00Z', '2018-11-04T03:00:00Z', '2018-11-05T02:00:00Z'],
    ['day', 'America/Sao_Paulo', '2018-11-04T03:00:00Z', '2018-11-04T03:00:00Z', '2018-11-05T02:00:00Z'],
    ['day', 'America/Sao_Paulo', '2018-11-04T02:59:59.999Z', '2018-11-03T03:00:00Z', '2018-11-04T03:00:00Z'],
  ])('%s in %s at %s → [%s, %s)', (kind, zone, now, start, end) => {
    const w = calendarWindow(kind, zone, ms(now));
    expect(w.start).toBe(ms(start));
    expect(w.end).toBe(ms(end));
  });

  it.each<[CalendarKind, string, string, string, string]>([
    ['month', 'Asia/Shanghai', '2026-11-15T00:00:00Z', '2026-11-01T00:00:00.000+08:00', '2026-12-01T00:00:00.000+08:00'],
    ['day', 'America/Sao_Paulo', '2018-11-04T12:00:00Z', '2018-11-04T01:00:00.000-02:00', '2018-11-05T00:00:00.000-02:00'],
    ['day', 'Asia/Kolkata', '2024-05-15T12:00:00Z', '2024-05-15T00:00:00.000+05:30', '2024-05-16T00:00:00.000+05:30'],
    ['week', 'Europe/Berlin', '2024-03-31T12:00:00Z', '2024-03-25T00:00:00.000+01:00', '2024-04-01T00:00:00.000+02:00'],
    ['day', 'Australia/Lord_Howe', '2024-10-06T12:00:00Z', '2024-10-06T00:00:00.000+10:30', '2024-10-07T00:00:00.000+11:00'],
  ])('%s in %s at %s is local %s to %s', (kind, zone, now, startIso, endIso) => {
    const w = calendarWindow(kind, zone, ms(now));
    expect(iso(w.start, zone)).toBe(startIso);
    expect(iso(w.end as number, zone)).toBe(endIso);
  });
});

describe('calendarWindow: DST days are 23 or 25 hours long', () => {
  it.each<[string, string, number]>([
    ['America/New_York', '2024-03-10T12:00:00Z', 23],
    ['America/New_York', '2024-11-03T12:00:00Z', 25],
    ['America/New_York', '2024-03-09T12:00:00Z', 24],
    ['Europe/Berlin', '2024-03-31T12:00:00Z', 23],
    ['Europe/Berlin', '2024-10-27T12:00:00Z', 25],
    ['Europe/Berlin', '2024-10-28T12:00:00Z', 24],
    ['Australia/Lord_Howe', '2024-10-06T12:00:00Z', 23.5],
    ['Australia/Lord_Howe', '2024-04-07T12:00:00Z', 24.5],
    ['America/Sao_Paulo', '2018-11-04T12:00:00Z', 23],
    ['Asia/Kolkata', '2024-03-10T12:00:00Z', 24],
  ])('day in %s containing %s lasts %s hours', (zone, now, hours) => {
    const w = calendarWindow('day', zone, ms(now));
    expect(((w.end as number) - w.start) / HOUR).toBe(hours);
    expect(w.start).toBeLessThanOrEqual(ms(now));
    expect(w.end).toBeGreaterThan(ms(now));
  });

  it.each<[string, string, number]>([
    // 2024-03-10 (the 23-hour day) is a Sunday: it shortens the week of Mar 4, not that of Mar 11
    ['America/New_York', '2024-03-07T12:00:00Z', 7 * 24 - 1],
    ['America/New_York', '2024-03-12T12:00:00Z', 7 * 24],
    ['America/New_York', '2024-11-04T12:00:00Z', 7 * 24],
    ['America/New_York', '2024-11-02T12:00:00Z', 7 * 24 + 1],
    ['Europe/Berlin', '2024-03-28T12:00:00Z', 7 * 24 - 1],
    ['Europe/Berlin', '2024-10-22T12:00:00Z', 7 * 24 + 1],
  ])('week in %s containing %s lasts %s hours', (zone, now, hours) => {
    const w = calendarWindow('week', zone, ms(now));
    expect(((w.end as number) - w.start) / HOUR).toBe(hours);
  });

  it('consecutive DST days in New York tile time with no gap or overlap', () => {
    const zone = 'America/New_York';
    let w = calendarWindow('day', zone, ms('2024-11-01T12:00:00Z'));
    const lengths: number[] = [];
    for (let i = 0; i < 5; i++) {
      const next = calendarWindow('day', zone, w.end as number);
      expect(next.start).toBe(w.end);
      lengths.push(((w.end as number) - w.start) / HOUR);
      w = next;
    }
    expect(lengths).toEqual([24, 24, 25, 24, 24]);
  });
});

describe('calendarWindow: weeks start on Monday, end exclusive', () => {
  it.each<[string, string, string, string, string]>([
    // 2024-03-10 is a Sunday, 2024-03-11 a Monday.
    ['Sunday late evening', 'UTC', '2024-03-10T23:59:59.999Z', '2024-03-04T00:00:00Z', '2024-03-11T00:00:00Z'],
    ['Monday 00:00 exactly', 'UTC', '2024-03-11T00:00:00Z', '2024-03-11T00:00:00Z', '2024-03-18T00:00:00Z'],
    ['Sunday 23:30 local', 'Asia/Shanghai', '2024-03-10T15:30:00Z', '2024-03-04T00:00:00+08:00', '2024-03-11T00:00:00+08:00'],
    ['Monday 00:00 local', 'Asia/Shanghai', '2024-03-10T16:00:00Z', '2024-03-11T00:00:00+08:00', '2024-03-18T00:00:00+08:00'],
    ['Sunday 23:59 local', 'America/New_York', '2024-03-11T03:59:00Z', '2024-03-04T00:00:00-05:00', '2024-03-11T00:00:00-04:00'],
    ['Monday 00:00 local', 'America/New_York', '2024-03-11T04:00:00Z', '2024-03-11T00:00:00-04:00', '2024-03-18T00:00:00-04:00'],
    ['Wednesday midday', 'Pacific/Kiritimati', '2024-03-12T22:00:00Z', '2024-03-11T00:00:00+14:00', '2024-03-18T00:00:00+14:00'],
    ['Sunday across a year end', 'UTC', '2023-12-31T22:00:00Z', '2023-12-25T00:00:00Z', '2024-01-01T00:00:00Z'],
    ['Monday 2024-12-30 in the week of 2025', 'UTC', '2025-01-01T12:00:00Z', '2024-12-30T00:00:00Z', '2025-01-06T00:00:00Z'],
  ])('%s (%s, %s) → [%s, %s)', (_label, zone, now, start, end) => {
    const w = calendarWindow('week', zone, ms(now));
    expect(w.start).toBe(ms(start));
    expect(w.end).toBe(ms(end));
    expect(DateTime.fromMillis(w.start, { zone }).weekday).toBe(1);
  });
});

describe('calendarWindow: month ends and leap years', () => {
  it.each<[string, string, string, string]>([
    ['Jan 31 end of day → Feb', '2024-01-31T23:59:59.999Z', '2024-01-01T00:00:00Z', '2024-02-01T00:00:00Z'],
    ['Feb 1 00:00', '2024-02-01T00:00:00Z', '2024-02-01T00:00:00Z', '2024-03-01T00:00:00Z'],
    ['Dec 31 → next year', '2024-12-31T23:59:59.999Z', '2024-12-01T00:00:00Z', '2025-01-01T00:00:00Z'],
    ['Jan 1 of the next year', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z'],
  ])('%s (%s)', (_label, now, start, end) => {
    const w = calendarWindow('month', 'UTC', ms(now));
    expect(w.start).toBe(ms(start));
    expect(w.end).toBe(ms(end));
  });

  it.each<[string, string, number]>([
    ['Feb 2024 (leap)', '2024-02-15T00:00:00Z', 29],
    ['Feb 2023', '2023-02-15T00:00:00Z', 28],
    ['Feb 2100 (not leap: divisible by 100)', '2100-02-15T00:00:00Z', 28],
    ['Feb 2000 (leap: divisible by 400)', '2000-02-15T00:00:00Z', 29],
    ['Jan 2024', '2024-01-15T00:00:00Z', 31],
    ['Apr 2024', '2024-04-15T00:00:00Z', 30],
    ['Dec 2024', '2024-12-15T00:00:00Z', 31],
  ])('%s has %s days', (_label, now, days) => {
    const w = calendarWindow('month', 'UTC', ms(now));
    expect(((w.end as number) - w.start) / DAY).toBe(days);
  });

  it('Feb 29 2024 is in February, Mar 1 in March', () => {
    expect(calendarWindow('month', 'UTC', ms('2024-02-29T23:59:59.999Z')).start).toBe(ms('2024-02-01T00:00:00Z'));
    expect(calendarWindow('month', 'UTC', ms('2024-03-01T00:00:00Z')).start).toBe(ms('2024-03-01T00:00:00Z'));
  });
});

describe('calendarWindow: exactly at a window start and 1 ms before', () => {
  it.each<[CalendarKind, string, string, string, string]>([
    // [kind, zone, boundary instant, start of the window before it, end of the window after it]
    ['day', 'UTC', '2024-05-16T00:00:00Z', '2024-05-15T00:00:00Z', '2024-05-17T00:00:00Z'],
    ['day', 'Asia/Kolkata', '2024-05-15T18:30:00Z', '2024-05-14T18:30:00Z', '2024-05-16T18:30:00Z'],
    ['week', 'Europe/Berlin', '2024-05-12T22:00:00Z', '2024-05-05T22:00:00Z', '2024-05-19T22:00:00Z'],
    ['month', 'Asia/Shanghai', '2026-11-30T16:00:00Z', '2026-10-31T16:00:00Z', '2026-12-31T16:00:00Z'],
    ['month', 'America/New_York', '2024-11-01T04:00:00Z', '2024-10-01T04:00:00Z', '2024-12-01T05:00:00Z'],
  ])('%s in %s at %s', (kind, zone, boundary, prevStart, nextEnd) => {
    const b = ms(boundary);
    const at = calendarWindow(kind, zone, b);
    expect(at).toEqual({ start: b, end: ms(nextEnd) });
    const before = calendarWindow(kind, zone, b - 1);
    expect(before).toEqual({ start: ms(prevStart), end: b });
  });
});

describe('calendarWindow: cache', () => {
  it.each<[CalendarKind, string, string, string]>([
    ['day', 'Europe/Berlin', '2024-05-15T12:00:00Z', '2024-05-16T12:00:00Z'],
    ['week', 'Asia/Kolkata', '2024-05-15T12:00:00Z', '2024-05-22T12:00:00Z'],
    ['month', 'America/New_York', '2024-05-15T12:00:00Z', '2024-06-15T12:00:00Z'],
  ])('%s in %s: moving forward and back never returns a stale window', (kind, zone, earlier, later) => {
    const e = ms(earlier);
    const l = ms(later);
    const first = calendarWindow(kind, zone, e);
    const forward = calendarWindow(kind, zone, l);
    expect(forward.start).toBeGreaterThanOrEqual(first.end as number);
    expect(forward.start).toBeLessThanOrEqual(l);
    expect(forward.end).toBeGreaterThan(l);
    const back = calendarWindow(kind, zone, e);
    expect(back).toEqual(first);
    expect(back.start).toBeLessThanOrEqual(e);
    expect(back.end).toBeGreaterThan(e);
  });

  it('a later call first, then an earlier one, gives the earlier window', () => {
    const later = calendarWindow('day', 'Asia/Shanghai', ms('2030-01-02T12:00:00Z'));
    expect(later.start).toBe(ms('2030-01-02T00:00:00+08:00'));
    const earlier = calendarWindow('day', 'Asia/Shanghai', ms('2030-01-01T12:00:00Z'));
    expect(earlier).toEqual({ start: ms('2030-01-01T00:00:00+08:00'), end: ms('2030-01-02T00:00:00+08:00') });
  });

  it('windows of other zones and kinds do not leak into each other', () => {
    const now = ms('2024-05-15T20:00:00Z');
    expect(calendarWindow('day', 'UTC', now).start).toBe(ms('2024-05-15T00:00:00Z'));
    expect(calendarWindow('day', 'Asia/Shanghai', now).start).toBe(ms('2024-05-16T00:00:00+08:00'));
    expect(calendarWindow('week', 'UTC', now).start).toBe(ms('2024-05-13T00:00:00Z'));
    expect(calendarWindow('day', 'UTC', now).start).toBe(ms('2024-05-15T00:00:00Z'));
  });

  it('throws a RangeError for an unknown zone', () => {
    expect(() => calendarWindow('day', 'Mars/Olympus_Mons', 0)).toThrow(RangeError);
  });
});

describe('bucketAt / bucketsAt', () => {
  const now = ms('2024-05-15T13:47:12.345Z');
  it.each<[string, WindowSpec, { start: number; end: number | null }]>([
    ['total', { kind: 'total' }, { start: 0, end: null }],
    ['day UTC', { kind: 'day', timeZone: 'UTC' }, { start: ms('2024-05-15T00:00:00Z'), end: ms('2024-05-16T00:00:00Z') }],
    [
      'month Shanghai',
      { kind: 'month', timeZone: 'Asia/Shanghai' },
      { start: ms('2024-05-01T00:00:00+08:00'), end: ms('2024-06-01T00:00:00+08:00') },
    ],
    // rolling 1 h → 1-minute buckets; 5 h → 5-minute; 24 h → 24-minute buckets aligned on the epoch
    ['rolling 1h', { kind: 'rolling', hours: 1 }, { start: ms('2024-05-15T13:47:00Z'), end: ms('2024-05-15T13:48:00Z') }],
    ['rolling 5h', { kind: 'rolling', hours: 5 }, { start: ms('2024-05-15T13:45:00Z'), end: ms('2024-05-15T13:50:00Z') }],
    ['rolling 24h', { kind: 'rolling', hours: 24 }, { start: ms('2024-05-15T13:36:00Z'), end: ms('2024-05-15T14:00:00Z') }],
  ])('bucketAt %s', (_label, window, expected) => {
    expect(bucketAt(window, now)).toEqual(expected);
  });

  it.each<[string, WindowSpec, number]>([
    ['total', { kind: 'total' }, 1],
    ['week', { kind: 'week', timeZone: 'Europe/Berlin' }, 1],
    ['rolling 5h', { kind: 'rolling', hours: 5 }, 60],
  ])('bucketsAt %s has %s bucket(s), the last being bucketAt', (_label, window, count) => {
    const buckets = bucketsAt(window, now);
    expect(buckets).toHaveLength(count);
    expect(buckets.at(-1)).toEqual(bucketAt(window, now));
  });
});

describe('rollingBuckets', () => {
  it.each<[number, string]>([
    [1, '2024-05-15T13:47:12.345Z'],
    [5, '2024-05-15T13:47:12.345Z'],
    [24, '2024-05-15T13:47:12.345Z'],
    [168, '2024-05-15T13:47:12.345Z'],
    [5, '2024-05-15T13:45:00.000Z'],
  ])('%s h at %s: 60 buckets of N minutes, contiguous, last contains now', (hours, nowIso) => {
    const now = ms(nowIso);
    const size = hours * MIN;
    const buckets = rollingBuckets(hours, now);
    expect(ROLLING_BUCKETS).toBe(60);
    expect(buckets).toHaveLength(60);
    const current = Math.floor(now / size) * size;
    const last = buckets[59];
    const first = buckets[0];
    expect(last).toEqual({ start: current, end: current + size });
    expect(last!.start).toBeLessThanOrEqual(now);
    expect(last!.end).toBeGreaterThan(now);
    expect(first!.start).toBe(current - 59 * size);
    buckets.forEach((b, i) => {
      expect((b.end as number) - b.start).toBe(size);
      if (i > 0) expect(b.start).toBe(buckets[i - 1]!.end);
    });
  });

  it.each<[number, string, string, string]>([
    [5, '2024-05-15T13:47:12.345Z', '2024-05-15T08:50:00Z', '2024-05-15T13:45:00Z'],
    [1, '2024-05-15T13:47:12.345Z', '2024-05-15T12:48:00Z', '2024-05-15T13:47:00Z'],
    // boundary: now exactly at a bucket start is in the new bucket; 1 ms earlier is not
    [5, '2024-05-15T13:50:00.000Z', '2024-05-15T08:55:00Z', '2024-05-15T13:50:00Z'],
    [5, '2024-05-15T13:49:59.999Z', '2024-05-15T08:50:00Z', '2024-05-15T13:45:00Z'],
  ])('%s h at %s: first bucket starts %s, last %s', (hours, nowIso, firstStart, lastStart) => {
    const buckets = rollingBuckets(hours, ms(nowIso));
    expect(buckets[0]!.start).toBe(ms(firstStart));
    expect(buckets[59]!.start).toBe(ms(lastStart));
  });
});

describe('nextResetAt', () => {
  const now = ms('2024-05-15T13:47:12.345Z');
  it.each<[string, WindowSpec, number | null, number | null]>([
    ['total never resets', { kind: 'total' }, null, null],
    ['total ignores used buckets', { kind: 'total' }, ms('2024-05-15T10:00:00Z'), null],
    ['rolling with nothing used', { kind: 'rolling', hours: 5 }, null, null],
    // oldest used bucket + 60 buckets of 5 min = + 5 h
    ['rolling 5h', { kind: 'rolling', hours: 5 }, ms('2024-05-15T09:00:00Z'), ms('2024-05-15T14:00:00Z')],
    ['rolling 1h', { kind: 'rolling', hours: 1 }, ms('2024-05-15T13:00:00Z'), ms('2024-05-15T14:00:00Z')],
    ['rolling 24h', { kind: 'rolling', hours: 24 }, ms('2024-05-14T14:00:00Z'), ms('2024-05-15T14:00:00Z')],
    ['day UTC', { kind: 'day', timeZone: 'UTC' }, null, ms('2024-05-16T00:00:00Z')],
    ['week Berlin', { kind: 'week', timeZone: 'Europe/Berlin' }, null, ms('2024-05-20T00:00:00+02:00')],
    ['month Shanghai', { kind: 'month', timeZone: 'Asia/Shanghai' }, null, ms('2024-06-01T00:00:00+08:00')],
    ['month ignores used buckets', { kind: 'month', timeZone: 'UTC' }, ms('2024-05-02T00:00:00Z'), ms('2024-06-01T00:00:00Z')],
  ])('%s', (_label, window, oldest, expected) => {
    expect(nextResetAt(window, now, oldest)).toBe(expected);
  });

  it('defaults oldestUsedBucketStart to null', () => {
    expect(nextResetAt({ kind: 'rolling', hours: 3 }, now)).toBeNull();
  });
});

describe('formatInstant', () => {
  it.each<[string, WindowSpec, string]>([
    ['2026-11-30T16:00:00Z', { kind: 'month', timeZone: 'Asia/Shanghai' }, '2026-12-01T00:00:00+08:00'],
    ['2026-11-30T16:00:00Z', { kind: 'day', timeZone: 'UTC' }, '2026-11-30T16:00:00Z'],
    ['2024-05-16T04:00:00Z', { kind: 'day', timeZone: 'America/New_York' }, '2024-05-16T00:00:00-04:00'],
    ['2024-01-16T05:00:00Z', { kind: 'week', timeZone: 'America/New_York' }, '2024-01-16T00:00:00-05:00'],
    ['2024-05-15T18:30:00Z', { kind: 'day', timeZone: 'Asia/Kolkata' }, '2024-05-16T00:00:00+05:30'],
    ['2024-05-15T10:00:00Z', { kind: 'day', timeZone: 'Pacific/Kiritimati' }, '2024-05-16T00:00:00+14:00'],
    ['2024-05-15T13:47:12.345Z', { kind: 'day', timeZone: 'UTC' }, '2024-05-15T13:47:12.345Z'],
    ['2026-11-30T16:00:00Z', { kind: 'rolling', hours: 5 }, '2026-11-30T16:00:00Z'],
    ['2026-11-30T16:00:00Z', { kind: 'total' }, '2026-11-30T16:00:00Z'],
    ['2024-05-15T13:47:12.345Z', { kind: 'rolling', hours: 1 }, '2024-05-15T13:47:12.345Z'],
  ])('%s in %j → %s', (instant, window, expected) => {
    expect(formatInstant(ms(instant), window)).toBe(expected);
  });

  it('formats the end of an Asia/Shanghai month window', () => {
    const window: WindowSpec = { kind: 'month', timeZone: 'Asia/Shanghai' };
    const end = nextResetAt(window, ms('2026-11-15T00:00:00Z'));
    expect(formatInstant(end as number, window)).toBe('2026-12-01T00:00:00+08:00');
  });
});

describe('windowPeriod', () => {
  it.each<[WindowSpec, string]>([
    [{ kind: 'day', timeZone: 'UTC' }, 'day'],
    [{ kind: 'week', timeZone: 'Asia/Shanghai' }, 'week'],
    [{ kind: 'month', timeZone: 'Europe/Berlin' }, 'month'],
    [{ kind: 'rolling', hours: 5 }, 'rolling:5h'],
    [{ kind: 'rolling', hours: 24 }, 'rolling:24h'],
    [{ kind: 'total' }, 'total'],
  ])('%j → %s', (window, expected) => {
    expect(windowPeriod(window)).toBe(expected);
  });
});

describe('windowSpanMs', () => {
  it.each<[WindowSpec, number]>([
    [{ kind: 'rolling', hours: 1 }, HOUR],
    [{ kind: 'rolling', hours: 5 }, 5 * HOUR],
    [{ kind: 'day', timeZone: 'UTC' }, DAY],
    [{ kind: 'week', timeZone: 'UTC' }, 7 * DAY],
    [{ kind: 'month', timeZone: 'UTC' }, 31 * DAY],
    [{ kind: 'total' }, Infinity],
  ])('%j → %s', (window, expected) => {
    expect(windowSpanMs(window)).toBe(expected);
  });

  it('orders rolling 24h = day < week < month < total', () => {
    const spans = (
      [
        { kind: 'rolling', hours: 24 },
        { kind: 'week', timeZone: 'UTC' },
        { kind: 'month', timeZone: 'UTC' },
        { kind: 'total' },
      ] satisfies WindowSpec[]
    ).map(windowSpanMs);
    expect(spans[0]).toBe(windowSpanMs({ kind: 'day', timeZone: 'UTC' }));
    expect([...spans].sort((a, b) => a - b)).toEqual(spans);
  });
});

describe('isValidTimeZone', () => {
  it.each<[string, boolean]>([
    ['UTC', true],
    ['Asia/Shanghai', true],
    ['America/New_York', true],
    ['Australia/Lord_Howe', true],
    ['Asia/Kolkata', true],
    ['Pacific/Kiritimati', true],
    ['America/Sao_Paulo', true],
    ['Mars/Olympus_Mons', false],
    ['', false],
    ['Asia/Shangai', false],
    ['not a zone', false],
  ])('%j → %s', (zone, expected) => {
    expect(isValidTimeZone(zone)).toBe(expected);
  });
});
