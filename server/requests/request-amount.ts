import type { RequestsConfig } from '../config/schema.js';
import type { Budget } from '../quota/budgets.js';
import { bucketAt } from '../quota/window.js';
import type { BudgetState, QuotaRequest } from '../store/types.js';

const HOUR = 3_600_000;
const CENT_MICROS = 10_000;

/**
 * A request's amounts, in the budget's unit: tokens when the budget limits tokens, else dollars (in
 * micro-dollars). A budget with both limits is asked in tokens.
 */
export type RequestUnit = 'tokens' | 'usd';

export const unitOf = (budget: Budget): RequestUnit => (budget.limitTokens !== null ? 'tokens' : 'usd');

/** The span a grant made now lives in: the budget's current window (null for a total budget, which has none). */
export function currentWindow(budget: Budget, now: number): { start: number; end: number } | null {
  const window = budget.window;
  if (window.kind === 'total') return null;
  if (window.kind === 'rolling') return { start: now - window.hours * HOUR, end: now + window.hours * HOUR };
  const bucket = bucketAt(window, now);
  return { start: bucket.start, end: bucket.end as number };
}

/** The budget's own limit in its unit (the state's budget has the grants in force added). */
export function ownLimit(state: BudgetState): number {
  const unit = unitOf(state.budget);
  const granted = (state.grants ?? []).reduce((sum, g) => sum + (unit === 'tokens' ? g.tokens : g.micros), 0);
  return (unit === 'tokens' ? (state.budget.limitTokens as number) : (state.budget.limitMicros as number)) - granted;
}

/**
 * What to ask for when the user names no amount: enough for the rest of the window at the current
 * burn rate, i.e. used so far ÷ elapsed part of the window × remaining part, and at least 10 % of the
 * budget's own limit. A rolling window's "rest" is one more window length (what a grant on it lasts),
 * so its default is what the window holds now. Tokens are whole; dollars round up to the cent.
 */
export function defaultAmount(state: BudgetState, now: number): number {
  const { budget, usage } = state;
  const unit = unitOf(budget);
  const used = unit === 'tokens' ? usage.usedTokens : usage.usedMicros;
  const floor = ownLimit(state) / 10;
  const window = currentWindow(budget, now);
  let burn = 0;
  if (window !== null) {
    const elapsed = budget.window.kind === 'rolling' ? window.end - now : now - window.start;
    const remaining = window.end - now;
    burn = elapsed > 0 ? (used / elapsed) * remaining : 0;
  }
  const amount = Math.max(burn, floor, 1);
  return unit === 'tokens' ? Math.ceil(amount) : Math.ceil(amount / CENT_MICROS) * CENT_MICROS;
}

/**
 * Whether the auto-approve policy approves a request of `amount` (in the budget's unit) now: at most
 * `maxPercent` of the budget's own limit, and fewer than `perWindow` policy approvals of this user
 * on this budget in its current window (`decided`: the user's approved requests).
 */
export function policyApproves(policy: RequestsConfig['autoApprove'], state: BudgetState, amount: number, decided: readonly QuotaRequest[], now: number): boolean {
  if (policy === null) return false;
  const window = currentWindow(state.budget, now);
  if (window === null) return false;
  if (amount * 100 > policy.maxPercent * ownLimit(state)) return false;
  const used = decided.filter(
    (r) => r.state === 'approved' && r.decidedBy === 'policy' && r.budgetKey === state.budget.key && r.decidedAt !== null && r.decidedAt >= window.start,
  ).length;
  return used < policy.perWindow;
}
