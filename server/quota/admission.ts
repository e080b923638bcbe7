import { admissionOnLimit, type Budget } from './budgets.js';

/** A budget's current counters: settled usage in its window, and what in-flight holds set aside. */
export interface BudgetUsage {
  usedTokens: number;
  usedMicros: number;
  reservedTokens: number;
  reservedMicros: number;
}

/**
 * What a request asks to set aside. `tokens`/`micros` is the part known up front (the prompt);
 * `output`, when given, is an allowance the engine may shrink to what the tightest budget has left.
 */
export interface Quote {
  tokens: number;
  micros: number;
  output?: OutputAllowance;
  /**
   * For a request already routed to a cheaper model (by `downgrade` or a fallback rule): budgets that
   * route admit it up to their limit × this (the hard ceiling), so it still counts against them.
   */
  downgradeCeiling?: number;
  /**
   * The request costs nothing at any length (a local model, a free tier): a dollar limit does not
   * apply to it, even one spent already; token limits still do.
   */
  free?: boolean;
  /**
   * Another upstream can serve the request: an upstream's budget that cannot take it whole refuses
   * it (so it goes there) instead of shrinking its output (see admissionOnLimit).
   */
  failover?: boolean;
}

export interface OutputAllowance {
  /** The most output the request may produce (its max_tokens, or the model's cap). */
  wantTokens: number;
  /** Below this the request is not worth starting (DESIGN: prompt plus one output token). */
  minTokens: number;
  /** Output price in micro-dollars per million tokens (0 when free or unpriced). */
  microsPerMillion: number;
}

export type Admission =
  /** `outputRoom`: how much output the tightest budget has room for (Infinity when none limits it). */
  | { ok: true; tokens: number; micros: number; outputTokens: number; outputRoom: number }
  | { ok: false; blockingIndex: number };

/** Cost of `tokens` at `microsPerMillion`, rounded up so a budget is never under-charged. */
export const costMicros = (tokens: number, microsPerMillion: number): number =>
  Math.ceil((tokens * microsPerMillion) / 1_000_000);

/**
 * How many output tokens fit into one budget after the fixed part of the quote; negative when even
 * the fixed part does not fit. Budgets that only alert at their limit never constrain.
 */
export function outputRoom(budget: Budget, usage: BudgetUsage, quote: Quote): number {
  const onLimit = admissionOnLimit(budget, quote.failover === true);
  if (onLimit === 'alert-only') return Infinity;
  const scale = onLimit === 'downgrade' && quote.downgradeCeiling !== undefined ? quote.downgradeCeiling : 1;
  let room = Infinity;
  if (budget.limitTokens !== null) {
    room = Math.floor(budget.limitTokens * scale) - usage.usedTokens - usage.reservedTokens - quote.tokens;
  }
  if (budget.limitMicros !== null && quote.free !== true) {
    const microsRoom = Math.floor(budget.limitMicros * scale) - usage.usedMicros - usage.reservedMicros - quote.micros;
    const price = quote.output?.microsPerMillion ?? 0;
    const fits = microsRoom < 0 ? -1 : price > 0 ? Math.floor((microsRoom * 1_000_000) / price) : Infinity;
    room = Math.min(room, fits);
  }
  return room;
}

/**
 * The admission decision over every budget that applies, pure so it can be table-tested and run
 * unchanged inside any store's transaction. Admits only if every budget has room for the fixed part
 * plus the minimum output; the output allowance is clamped to the tightest budget.
 */
export function admit(budgets: ReadonlyArray<{ budget: Budget; usage: BudgetUsage }>, quote: Quote): Admission {
  const min = quote.output?.minTokens ?? 0;
  const want = quote.output?.wantTokens ?? 0;
  let tightest = -1;
  let tightestRoom = Infinity;
  let downgrade = -1;
  budgets.forEach(({ budget, usage }, i) => {
    const room = outputRoom(budget, usage, quote);
    if (room < tightestRoom) {
      tightestRoom = room;
      tightest = i;
    }
    // A `downgrade` budget does not shrink the answer of the expensive model to what is left: a
    // request it cannot take whole goes to its cheaper model instead (the caller retries with it).
    const mode = admissionOnLimit(budget, quote.failover === true);
    if (downgrade < 0 && (mode === 'whole' || (mode === 'downgrade' && quote.downgradeCeiling === undefined)) && room < want) downgrade = i;
  });
  if (tightestRoom < min || tightestRoom < 0) return { ok: false, blockingIndex: tightest };
  if (downgrade >= 0) return { ok: false, blockingIndex: downgrade };
  const grant = Math.min(want, tightestRoom);
  const price = quote.output?.microsPerMillion ?? 0;
  return { ok: true, tokens: quote.tokens + grant, micros: quote.micros + costMicros(grant, price), outputTokens: grant, outputRoom: tightestRoom };
}
