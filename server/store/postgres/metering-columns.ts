import type { LedgerRow } from '../sql/rows.js';
import type { BudgetArg, quoteArg } from './metering-args.js';

/**
 * The typed parameters of the batch functions lq_meter_many and lq_settle_many (migration 13, and
 * 14 which takes the windows as text: metering-functions-13.ts, -14.ts): the arrays those functions
 * used to take apart from one jsonb in their first statements, built here instead. Each array is a
 * column: one value per item, per window, or per budget of each item in turn; `first` and
 * `thresholdPlaces` say where each item's (or window's) run starts, counted from 1 as PostgreSQL's
 * arrays are, with one past the end last.
 */

/** What every item of a batch brings: the scopes its budgets were resolved under, and the budgets. */
export interface BatchItem {
  /** Its scopes' names, in the order of its fingerprint. */
  scopes: readonly string[];
  /** lq_fingerprint's answer for those scopes when its budgets were resolved. */
  fingerprint: string;
  budgets: readonly BudgetArg[];
}

/** A reservation or lease extension: its own fields, as the function reads them from p.items (see PostgresStore.reserve, extend). */
export interface MeterFields {
  quote: ReturnType<typeof quoteArg>;
  hold?: { id: string };
  holdId?: string;
  rates?: object;
}

/** Places from counts: [1, 1 + c1, 1 + c1 + c2, …], item n's run at places[n] .. places[n + 1] - 1. */
function placesOf(counts: readonly number[]): number[] {
  const places = [1];
  for (const count of counts) places.push((places.at(-1) as number) + count);
  return places;
}

/** A window: a budget at one bucket, as the functions' jsonb (lq_window_sums, lq_count_settle) read it. */
const windowArg = (b: BudgetArg) => ({
  key: b.key,
  limitTokens: b.limitTokens,
  limitMicros: b.limitMicros,
  thresholds: b.thresholds,
  projectable: b.projectable,
  col: b.col,
  id: b.id,
  models: b.models,
  count: b.count,
  start: b.start,
  end: b.end,
  retires: b.retires,
  step: b.step,
});

/**
 * The batch's windows, each once (a budget at its first bucket: two instants of one batch may
 * straddle a bucket's edge), in key order; and each item's budgets as places among them.
 */
function windowsOf(items: readonly BatchItem[]) {
  const windowKey = (b: BudgetArg) => `${b.key}@${b.start}`;
  const byKey = new Map<string, BudgetArg>();
  for (const item of items) for (const b of item.budgets) if (!byKey.has(windowKey(b))) byKey.set(windowKey(b), b);
  const keys = [...byKey.keys()].sort();
  const windows = keys.map((k) => byKey.get(k) as BudgetArg);
  const placeOf = new Map(keys.map((k, i) => [k, i + 1]));
  const siblings = new Map<string, number>();
  for (const w of windows) siblings.set(w.key, (siblings.get(w.key) ?? 0) + 1);
  return {
    windows,
    places: items.flatMap((item) => item.budgets.map((b) => placeOf.get(windowKey(b)) as number)),
    first: placesOf(items.map((item) => item.budgets.length)),
    /** Whether another window of the batch is of the same budget. */
    shared: windows.map((w) => (siblings.get(w.key) as number) > 1),
  };
}

/** The newest bucket's start of a window: the bucket at its call's instant. */
const newestOf = (w: BudgetArg) => w.start + (w.count - 1) * w.step;

/**
 * The columns both functions start with: the scopes to lock (distinct, in text order) and what
 * lq_lock_fresh checks each item's fingerprint against; the windows; each item's budgets' places.
 */
function batchColumns(items: readonly BatchItem[]) {
  const { windows, places, first, shared } = windowsOf(items);
  const columns = {
    scopes: [...new Set(items.flatMap((item) => item.scopes))].sort(),
    prints: items.map((item) => item.fingerprint),
    itemScopes: items.flatMap((item) => item.scopes),
    itemOf: items.flatMap((item, n) => item.scopes.map(() => n + 1)),
    budgetKeys: windows.map((w) => w.key),
    newest: windows.map(newestOf),
    counts: windows.map((w) => w.count),
    starts: windows.map((w) => w.start),
    steps: windows.map((w) => w.step),
    places,
    first,
  };
  // The windows themselves go as one JSON text of their own: as array elements each would be
  // escaped, and as part of p each call would make them jsonb, which only the rare paths read.
  return { windows, shared, columns, windowArgs: windows.map(windowArg) };
}

/** lq_meter_many's parameters after p: those of the batch, then its own, each in the order of its keys. */
export function meterColumns(items: readonly (BatchItem & { op: 'reserve' | 'extend'; fields: MeterFields })[]) {
  const { windows, columns, windowArgs } = batchColumns(items);
  const budgets = items.flatMap((item) => item.budgets);
  // Each budget's reservations once, whatever the number of its windows in the batch.
  const reservationKeys = [...new Set(windows.map((w) => w.key))].sort();
  const reservationPlace = new Map(reservationKeys.map((k, i) => [k, i + 1]));
  const quotes = items.map((item) => item.fields.quote);
  return {
    windows: windowArgs,
    batch: columns,
    own: {
      reservationKeys,
      reservationPlaces: budgets.map((b) => reservationPlace.get(b.key) as number),
      onLimit: budgets.map((b) => b.onLimit),
      limitTokens: budgets.map((b) => b.limitTokens),
      limitMicros: budgets.map((b) => b.limitMicros),
      ops: items.map((item) => item.op),
      hasRates: items.map((item) => typeof item.fields.rates === 'object' && item.fields.rates !== null),
      holdIds: items.map((item) => item.fields.hold?.id ?? item.fields.holdId ?? null),
      tokens: quotes.map((q) => q.tokens),
      micros: quotes.map((q) => q.micros),
      want: quotes.map((q) => q.want ?? 0),
      min: quotes.map((q) => q.min ?? 0),
      price: quotes.map((q) => q.price ?? 0),
      ceiling: quotes.map((q) => q.ceiling ?? null),
      free: quotes.map((q) => q.free ?? false),
    },
  };
}

/** lq_settle_many's parameters after p: those of the batch, then its own, each in the order of its keys. */
export function settleColumns(items: readonly (BatchItem & { entry: Omit<LedgerRow, 'id'>; overrun?: object })[]) {
  const { windows, shared, columns, windowArgs } = batchColumns(items);
  // Each window's thresholds, ascending, one window after another.
  const thresholds = windows.map((w) => [...w.thresholds].sort((a, b) => a - b));
  return {
    windows: windowArgs,
    batch: columns,
    own: {
      spans: windows.map((w) => w.count * w.step),
      shared,
      limitTokens: windows.map((w) => w.limitTokens),
      limitMicros: windows.map((w) => w.limitMicros),
      projectable: windows.map((w) => w.projectable && w.end !== null),
      ends: windows.map((w) => w.end),
      thresholds: thresholds.flat(),
      thresholdPlaces: placesOf(thresholds.map((t) => t.length)),
      requestIds: items.map((item) => item.entry.request_id),
      tokens: items.map((item) => item.entry.input_tokens + item.entry.output_tokens),
      micros: items.map((item) => item.entry.cost_micros),
      at: items.map((item) => item.entry.at),
      overrun: items.map((item) => item.overrun !== undefined),
    },
  };
}

/** An element of an array literal: a number or boolean as it is, text quoted (and escaped only when it must be). */
function arrayElement(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  const text = String(value);
  return /["\\]/.test(text) ? `"${text.replace(/["\\]/g, '\\$&')}"` : `"${text}"`;
}

/**
 * A column as PostgreSQL's array literal ({1,2,NULL}, {"a","b"}): what node-postgres sends for an
 * array, without its quoting and escaping of every number, which was about a third of the cost of
 * sending a batch's columns.
 */
export function arrayLiteral(column: readonly unknown[]): string {
  let literal = '{';
  for (let i = 0; i < column.length; i++) literal += (i === 0 ? '' : ',') + arrayElement(column[i]);
  return `${literal}}`;
}

/** A function's parameters after p, in order: its columns (meterColumns, settleColumns), group by group, as array literals. */
export const columnParameters = ({ batch, own }: { batch: object; own: object }): string[] =>
  [...Object.values(batch), ...Object.values(own)].map((column) => arrayLiteral(column as unknown[]));
