import { DateTime } from 'luxon';

const PLAIN_DATE = /^\d{4}-\d{2}-\d{2}$/;

export type ReportBound = { ok: true; value: string } | { ok: false; problem: string };

/**
 * A `--from` or `--to` of `usage` as the admin API takes it: an ISO instant with offset. A plain
 * date (`2026-12-01`) is midnight in `timeZone`; as `--to`, which is exclusive, it means through
 * the end of that day, so it becomes the next midnight. Anything else goes to the server as typed,
 * which names the field when it is not an instant.
 */
export function reportBound(typed: string, timeZone: string, edge: 'from' | 'to'): ReportBound {
  if (!PLAIN_DATE.test(typed)) return { ok: true, value: typed };
  const zone = DateTime.now().setZone(timeZone);
  if (!zone.isValid) return { ok: false, problem: `--tz: unknown IANA time zone ${JSON.stringify(timeZone)}` };
  const day = DateTime.fromISO(typed, { zone: timeZone });
  if (!day.isValid) return { ok: false, problem: `--${edge}: ${typed} is not a date` };
  // startOf('day'): where midnight is skipped (a DST change at 00:00), the day starts at the first instant that exists.
  const start = (edge === 'to' ? day.plus({ days: 1 }) : day).startOf('day');
  return { ok: true, value: start.toISO({ suppressMilliseconds: true }) ?? typed };
}
