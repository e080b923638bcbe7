import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL } from '../testing/store-kinds.js';
import type { BudgetArg } from './metering-args.js';
import { arrayLiteral, meterColumns, settleColumns } from './metering-columns.js';

// The columns the batch functions are given (metering-columns.ts). Their answers through the
// store are held by the store suites; these pin the places, which a mistake would shift silently
// onto another budget's window.

const HOUR = 3_600_000;
const window = (key: string, start: number, extra: Partial<BudgetArg> = {}): BudgetArg => ({
  i: 0,
  key,
  onLimit: 'reject',
  limitTokens: 1_000,
  limitMicros: null,
  thresholds: [90, 50, 80],
  projectable: false,
  col: 'user_id',
  id: key,
  models: null,
  first: 0,
  count: 1,
  start,
  end: start + HOUR,
  retires: start + HOUR,
  step: 0,
  ...extra,
});
const item = (budgets: BudgetArg[], scopes = ['user:a']) => ({ scopes, fingerprint: scopes.map(() => '0').join(','), budgets });
const entry = (id: string, input: number, output: number, cost: number) =>
  ({ request_id: id, at: 5, input_tokens: input, output_tokens: output, cost_micros: cost }) as Parameters<typeof settleColumns>[0][number]['entry'];

describe('the columns of a batch', () => {
  it('lists each window once in key order, and each item’s budgets as its places among them', () => {
    const user = window('user:a|month', 0);
    const global = window('global|month', 0);
    const { batch } = settleColumns([
      { ...item([user, global], ['global', 'user:a']), entry: entry('r1', 1, 2, 3) },
      { ...item([global]), entry: entry('r2', 4, 5, 6) },
    ]);
    expect(batch.budgetKeys).toEqual(['global|month', 'user:a|month']);
    expect(batch.places).toEqual([2, 1, 1]);
    expect(batch.first).toEqual([1, 3, 4]);
    expect(batch.scopes).toEqual(['global', 'user:a']);
    expect([batch.prints, batch.itemScopes, batch.itemOf]).toEqual([['0,0', '0'], ['global', 'user:a', 'user:a'], [1, 1, 2]]);
  });

  it('keeps a budget’s two windows when the batch’s clocks straddle a bucket’s edge, each marked shared', () => {
    const rolling = { count: 3, step: HOUR, end: HOUR };
    const { windows, batch, own } = settleColumns([
      { ...item([window('key:k|rolling', 0, rolling), window('user:a|month', 0)]), entry: entry('r1', 1, 0, 0) },
      { ...item([window('key:k|rolling', HOUR, rolling)]), entry: entry('r2', 1, 0, 0) },
    ]);
    expect(batch.budgetKeys).toEqual(['key:k|rolling', 'key:k|rolling', 'user:a|month']);
    expect(windows.map((w) => [w.key, w.start])).toEqual([['key:k|rolling', 0], ['key:k|rolling', HOUR], ['user:a|month', 0]]);
    expect(batch.newest).toEqual([2 * HOUR, 3 * HOUR, 0]);
    expect([batch.counts, own.spans, own.shared]).toEqual([[3, 3, 1], [3 * HOUR, 3 * HOUR, 0], [true, true, false]]);
    expect([batch.starts, batch.steps]).toEqual([[0, HOUR, 0], [HOUR, HOUR, 0]]);
    expect([batch.places, batch.first]).toEqual([[1, 3, 2], [1, 3, 4]]);
  });

  it('gives a settle each window’s thresholds ascending, and its own sums', () => {
    const { own } = settleColumns([
      { ...item([window('user:a|month', 0, { projectable: true }), window('global|month', 0, { thresholds: [], end: null })]), entry: entry('r1', 7, 8, 9), overrun: {} },
    ]);
    expect([own.limitTokens, own.projectable, own.ends]).toEqual([[1_000, 1_000], [false, true], [null, HOUR]]);
    expect([own.thresholds, own.thresholdPlaces]).toEqual([[50, 80, 90], [1, 1, 4]]);
    expect([own.requestIds, own.tokens, own.micros, own.at, own.overrun]).toEqual([['r1'], [15], [9], [5], [true]]);
  });

  it('gives an admission its budgets’ reservations once per budget, its rules, and its quote with the defaults the rules assume', () => {
    const rolling = { count: 3, step: HOUR, end: HOUR };
    const none = { want: undefined, min: undefined, price: undefined, ceiling: undefined, free: undefined, failover: undefined };
    const { batch, own } = meterColumns([
      {
        ...item([window('key:k|rolling', 0, rolling), window('global|month', 0, { onLimit: 'alert-only', limitTokens: null, limitMicros: 5 })]),
        op: 'reserve',
        fields: { quote: { ...none, tokens: 10, micros: 2, want: 100, min: 1, price: 600_000 }, hold: { id: 'h1' } },
      },
      { ...item([window('key:k|rolling', HOUR, rolling)]), op: 'extend', fields: { quote: { ...none, tokens: 3, micros: 1 }, holdId: 'h0' } },
    ]);
    expect([own.reservationKeys, own.reservationPlaces]).toEqual([['global|month', 'key:k|rolling'], [2, 1, 2]]);
    expect([own.onLimit, own.limitTokens, own.limitMicros]).toEqual([['reject', 'alert-only', 'reject'], [1_000, null, 1_000], [null, 5, null]]);
    expect([batch.places, batch.first]).toEqual([[2, 1, 3], [1, 3, 4]]);
    expect([own.ops, own.hasRates, own.holdIds]).toEqual([['reserve', 'extend'], [false, false], ['h1', 'h0']]);
    const quotes = [own.tokens, own.micros, own.want, own.min, own.price, own.ceiling, own.free];
    expect(quotes).toEqual([[10, 3], [2, 1], [100, 0], [1, 0], [600_000, 0], [null, null], [false, false]]);
  });
});

describe('a column as an array literal', () => {
  it('reads back in PostgreSQL as the values it was made of, whatever the text holds', async () => {
    const texts = ['plain', 'a "quoted" word', 'back\\slash', '', 'NULL', 'x,y', '{braces}', ' spaced ', 'ünïcode', null];
    const numbers = [0, -1, 9_007_199_254_740_991, null, 1_796_083_200_000];
    const fractions = [0.5, 600_000, null, -2.25];
    const flags = [true, false, null];
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ t: (string | null)[]; n: (string | null)[]; f: (number | null)[]; b: (boolean | null)[]; e: string[] }>(
        'SELECT $1::text[] AS t, $2::bigint[]::text[] AS n, $3::float8[] AS f, $4::boolean[] AS b, $5::int[]::text[] AS e',
        [arrayLiteral(texts), arrayLiteral(numbers), arrayLiteral(fractions), arrayLiteral(flags), arrayLiteral([])],
      );
      expect(rows[0]).toEqual({ t: texts, n: numbers.map((n) => (n === null ? null : String(n))), f: fractions, b: flags, e: [] });
    } finally {
      await client.end();
    }
  });
});
