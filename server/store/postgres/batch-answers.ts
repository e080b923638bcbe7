import type { RateCheck, RateLimited } from '../../quota/rate-limits.js';
import type { LedgerRow } from '../sql/rows.js';

/**
 * What a metering function answers for one item (see metering-functions-11.ts): each caller reads
 * its own fields. The batch functions of migrations 12, 13 and 14 answer in columns; the
 * functions below turn those back into one of these per item.
 */
export interface MeteringAnswer {
  stale?: true;
  /** Per budget, settled usage ([tokens, micros, oldest used]) and what holds set aside ([tokens, micros]). */
  used?: unknown;
  reserved?: unknown;
  /** lq_admit's decision: the budget that refused, or what was granted (tokens, micros, output). */
  ok?: boolean;
  blocking?: number | null;
  granted?: [number, number, number];
  exists?: true;
  unknown?: true;
  subject?: { user: string; project: string | null; key: string };
  /** An extension's grown hold (a row of `holds`), null when it was refused. */
  hold?: unknown;
  entry?: LedgerRow;
  duplicate?: true;
  alerts?: true;
  /** A reservation with rates: the checks read under the locks, and the limit that refused, if one did. */
  rates?: RateCheck[];
  rateLimited?: RateLimited;
}

/** The columns lq_meter_many answers (metering-functions-12.ts; 13.ts and 14.ts answer the same). */
interface MeterColumns {
  status: ('stale' | 'unknown' | 'subject' | 'exists' | 'decided')[];
  extra: (Record<string, unknown> | null)[];
  ok: (boolean | null)[];
  blocking: (number | null)[];
  granted: [unknown[], unknown[], unknown[]];
  used: [unknown[], unknown[], unknown[]];
  reserved: [unknown[], unknown[]];
}

/** The columns lq_settle_many answers (metering-functions-12.ts; 13.ts and 14.ts answer the same). */
interface SettleColumns {
  status: ('stale' | 'duplicate' | 'alerts' | 'ok')[];
  /** [request id, ledger id] of each entry written. */
  ids: [string, number][];
  used: [unknown[], unknown[], unknown[]];
  /** The stored entries of the duplicates. */
  entries: LedgerRow[];
}

const answerError = (fn: string) => new Error(`${fn} answered for other items than it was given`);

/** Reads `width` columns, `count` values from `offset` on, as one tuple per value: [[c0[i], c1[i], …], …]. */
function tuples(columns: readonly unknown[][], offset: number, count: number): unknown[][] {
  return Array.from({ length: count }, (_, k) => columns.map((column) => column[offset + k]));
}

/** Whether every column holds `length` values. */
const columnsOf = (columns: unknown, width: number, length: number): columns is unknown[][] =>
  Array.isArray(columns) && columns.length === width && columns.every((c) => Array.isArray(c) && c.length === length);

/**
 * lq_meter_many's answer as lq_meter_batch's, one per item. `budgets[n]` is the number of budgets
 * item n was given: its `used` and `reserved` are the next that many values of those columns.
 */
export function meterAnswers(answer: unknown, budgets: readonly number[]): MeteringAnswer[] {
  const a = answer as MeterColumns;
  const n = budgets.length;
  if (!Array.isArray(a?.status) || a.status.length !== n || !Array.isArray(a.extra) || a.extra.length !== n) throw answerError('lq_meter_many');
  const decided = budgets.reduce((sum, count, i) => sum + (a.status[i] === 'decided' ? count : 0), 0);
  if (!columnsOf(a.used, 3, decided) || !columnsOf(a.reserved, 2, decided) || !columnsOf(a.granted, 3, n)) throw answerError('lq_meter_many');
  let offset = 0;
  return a.status.map((status, i): MeteringAnswer => {
    const extra = a.extra[i] ?? {};
    switch (status) {
      case 'stale':
        return { stale: true };
      case 'unknown':
        return { unknown: true };
      case 'exists':
        return { exists: true };
      case 'subject':
        return extra as MeteringAnswer;
      case 'decided': {
        const count = budgets[i] as number;
        const used = tuples(a.used, offset, count);
        const reserved = tuples(a.reserved, offset, count);
        offset += count;
        const granted = tuples(a.granted, i, 1)[0] as [number, number, number];
        return { used, reserved, ok: a.ok[i] === true, blocking: a.blocking[i] ?? null, granted, ...extra };
      }
      default:
        throw answerError('lq_meter_many');
    }
  });
}

/**
 * lq_settle_many's answer as lq_settle_batch's, one per settle. `settles[n]` is what settle n
 * was given: its entry (written as given, with the id the database chose) and its number of budgets.
 */
export function settleAnswers(answer: unknown, settles: readonly { entry: Omit<LedgerRow, 'id'>; budgets: number }[]): MeteringAnswer[] {
  const a = answer as SettleColumns;
  const n = settles.length;
  if (!Array.isArray(a?.status) || a.status.length !== n || !Array.isArray(a.ids) || !Array.isArray(a.entries)) throw answerError('lq_settle_many');
  const counted = settles.reduce((sum, s, i) => sum + (a.status[i] === 'ok' ? s.budgets : 0), 0);
  if (!columnsOf(a.used, 3, counted)) throw answerError('lq_settle_many');
  const ids = new Map(a.ids);
  const stored = new Map(a.entries.map((row) => [row.request_id, row]));
  let offset = 0;
  return a.status.map((status, i): MeteringAnswer => {
    const { entry, budgets } = settles[i] as (typeof settles)[number];
    switch (status) {
      case 'stale':
        return { stale: true };
      case 'alerts':
        return { alerts: true };
      case 'duplicate': {
        const row = stored.get(entry.request_id);
        if (!row) throw answerError('lq_settle_many');
        return { duplicate: true, entry: row };
      }
      case 'ok': {
        const id = ids.get(entry.request_id);
        if (id === undefined) throw answerError('lq_settle_many');
        const used = tuples(a.used, offset, budgets);
        offset += budgets;
        return { entry: { ...entry, id }, used };
      }
      default:
        throw answerError('lq_settle_many');
    }
  });
}
