import { projectable } from '../../alerts/thresholds.js';
import type { Quote } from '../../quota/admission.js';
import { admissionOnLimit, modelsRegExpSource, type AdmissionMode, type Budget } from '../../quota/budgets.js';
import { bucketAt, bucketRetiresAt, bucketsAt, type Bucket } from '../../quota/window.js';
import { SCOPE_COLUMN } from '../sql/ledger-sql.js';

/**
 * What the metering functions (metering-functions.ts, and those of migration 11 the store calls
 * now) are given and give back. The window arithmetic (time zones, rolling buckets) stays here: the
 * functions receive every budget's buckets at `now` and answer each budget's window sums.
 */

export interface Sums {
  tokens: number;
  micros: number;
}

/** A window's settled usage. */
export interface WindowUsage extends Sums {
  /** Start of the oldest bucket with usage (rolling windows), for the reset time. */
  oldestUsed: number | null;
}

export interface BudgetArg {
  i: number;
  key: string;
  onLimit: AdmissionMode;
  limitTokens: number | null;
  limitMicros: number | null;
  thresholds: number[];
  /** Whether a settle may fire a projected-exhaustion alert for it (projection on, calendar window). */
  projectable: boolean;
  /** The ledger column of the budget's scope; null for global (every row). */
  col: string | null;
  id: string | null;
  /** A POSIX regular expression of the models it counts (null: every model), for counting from the ledger. */
  models: string | null;
  /**
   * Its window's buckets, which lq_buckets lists again: numbered from `first`, `count` of them,
   * each `step` after the one before, the first one [start, end) retiring at `retires`. The last
   * is the bucket at `now`.
   */
  first: number;
  count: number;
  start: number;
  end: number | null;
  retires: number | null;
  step: number;
}

export interface MeteringArgs {
  budgets: BudgetArg[];
}

/** The budgets of a call, in the order of `budgets`, with their buckets at `now`. */
export function meteringArgs(budgets: readonly Budget[], now: number, projection: boolean, failover = false): MeteringArgs {
  let first = 0;
  return {
    budgets: budgets.map((budget, i): BudgetArg => {
      const buckets = bucketsAt(budget.window, now);
      const [oldest] = buckets as [Bucket, ...Bucket[]];
      const step = buckets.length > 1 ? (buckets[1] as Bucket).start - oldest.start : 0;
      assertEvenlySpaced(buckets, step, bucketAt(budget.window, now));
      const scope = budget.scope;
      const arg: BudgetArg = {
        i,
        key: budget.key,
        // lq_admit knows `downgrade`; a budget with fallback rules is admitted as one.
        onLimit: admissionOnLimit(budget, failover),
        limitTokens: budget.limitTokens,
        limitMicros: budget.limitMicros,
        thresholds: budget.thresholds,
        projectable: projection && projectable(budget.window),
        col: scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind],
        id: scope.kind === 'global' ? null : scope.id,
        models: modelsRegExpSource(budget.models),
        first,
        count: buckets.length,
        start: oldest.start,
        end: oldest.end,
        retires: bucketRetiresAt(budget.window, oldest),
        step,
      };
      first += buckets.length;
      return arg;
    }),
  };
}

/** What lq_buckets assumes of a window's buckets: each `step` after the last, the one at `now` last. */
function assertEvenlySpaced(buckets: readonly Bucket[], step: number, current: Bucket): void {
  const even = buckets.every((b, k) => b.start === (buckets[0] as Bucket).start + k * step);
  if (!even || buckets.at(-1)?.start !== current.start) throw new Error('counter buckets are not evenly spaced up to now');
}

/** A quote as lq_admit reads it (absent fields: no output allowance, not downgraded). */
export const quoteArg = (quote: Quote) => ({
  tokens: quote.tokens,
  micros: quote.micros,
  want: quote.output?.wantTokens,
  min: quote.output?.minTokens,
  price: quote.output?.microsPerMillion,
  ceiling: quote.downgradeCeiling,
  free: quote.free,
  failover: quote.failover,
});

/**
 * Amounts read back through jsonb arrive as JavaScript numbers: one that is not a safe integer was
 * rounded, and is an error (as pg-pool.ts's parser makes it for BIGINT columns), never a balance.
 */
function safeInteger(value: unknown): number {
  if (!Number.isSafeInteger(value)) throw new RangeError(`database value ${String(value)} is not a safe integer`);
  return value as number;
}

/** One tuple per budget, as the functions of migration 11 answer them (`used`, `reserved`). */
function tuples(values: unknown, budgets: number, width: number): unknown[][] {
  if (!Array.isArray(values) || values.length !== budgets || !values.every((v) => Array.isArray(v) && v.length === width)) {
    throw new TypeError('database answer without the sums of its budgets');
  }
  return values as unknown[][];
}

/**
 * Each budget's window usage from a function's `used` ([tokens, micros, oldest used bucket start],
 * in meteringArgs' order). Only a rolling window resets by its oldest used bucket.
 */
export function windowUsagesOf(budgets: readonly Budget[], used: unknown): WindowUsage[] {
  return tuples(used, budgets.length, 3).map(([tokens, micros, oldest], i) => ({
    tokens: safeInteger(tokens),
    micros: safeInteger(micros),
    oldestUsed: (budgets[i] as Budget).window.kind === 'rolling' && oldest !== null ? safeInteger(oldest) : null,
  }));
}

/** What live holds set aside per budget, from a function's `reserved` ([tokens, micros] each); none when absent. */
export function reservationsOf(budgets: readonly Budget[], reserved: unknown): Sums[] {
  if (reserved === undefined) return budgets.map(() => ({ tokens: 0, micros: 0 }));
  return tuples(reserved, budgets.length, 2).map(([tokens, micros]) => ({ tokens: safeInteger(tokens), micros: safeInteger(micros) }));
}
