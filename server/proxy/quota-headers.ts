import { quotaHeadline } from '../quota/status-report.js';
import type { StatusLevels } from '../quota/status.js';
import type { BudgetState } from '../store/types.js';

/**
 * `x-quota-limit`, `x-quota-remaining` and `x-quota-reset` of the binding budget (plus its unit),
 * on every proxied response. Nothing when no budget applies.
 */
export function quotaHeaders(states: readonly BudgetState[], levels: StatusLevels): Record<string, string> {
  // The caller's own budgets: a provider account's (upstream:NAME) is the deployment's business.
  const own = states.some((s) => s.budget.scope.kind === 'upstream') ? states.filter((s) => s.budget.scope.kind !== 'upstream') : states;
  const status = quotaHeadline(own, levels);
  if (status.unit === null || status.limit === null || status.remaining === null) return {};
  const headers: Record<string, string> = {
    'x-quota-limit': String(status.limit),
    'x-quota-remaining': String(status.remaining),
    'x-quota-unit': status.unit,
  };
  if (status.nextReset !== null) headers['x-quota-reset'] = status.nextReset;
  return headers;
}

/** Tokens and micro-dollars, as a hold sets them aside and a settle charges them. */
export interface Charge {
  tokens: number;
  micros: number;
}

/**
 * The budgets once a request is settled: its hold (as taken at admission) gone and `charged` added
 * to what is used; everything else as it was at admission.
 */
export function settledStates(states: readonly BudgetState[], held: Charge, charged: Charge): BudgetState[] {
  return states.map((state) => ({
    ...state,
    usage: {
      usedTokens: state.usage.usedTokens + charged.tokens,
      usedMicros: state.usage.usedMicros + charged.micros,
      reservedTokens: Math.max(0, state.usage.reservedTokens - held.tokens),
      reservedMicros: Math.max(0, state.usage.reservedMicros - held.micros),
    },
  }));
}
