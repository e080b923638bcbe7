import { DateTime } from 'luxon';

/** One local day of a report, clipped to the report's range: [start, end) in epoch ms. */
export interface LocalDay {
  day: string;
  start: number;
  end: number;
}

/**
 * The local days of an IANA zone that [from, to) touches. Luxon walks the calendar, so a DST day
 * is 23 or 25 hours long and a zone whose midnight is skipped starts its day at 01:00.
 */
export function localDays(from: number, to: number, timeZone: string): LocalDay[] {
  const days: LocalDay[] = [];
  let day = DateTime.fromMillis(from, { zone: timeZone }).startOf('day');
  while (day.toMillis() < to) {
    const next = day.plus({ days: 1 }).startOf('day');
    days.push({ day: day.toISODate() as string, start: Math.max(day.toMillis(), from), end: Math.min(next.toMillis(), to) });
    day = next;
  }
  return days;
}
