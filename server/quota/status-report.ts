import type { BudgetState, Grant } from '../store/types.js';
import { grantTotals, type FallbackRule } from './budgets.js';
import type { ScopeKind } from './scope.js';
import { formatScope } from './scope.js';
import {
  bindingIndex,
  bindingUnit,
  microsToUsd,
  percentageOf,
  readingLevel,
  type BudgetFigures,
  type StatusLevel,
  type StatusLevels,
  type Unit,
} from './status.js';
import { formatInstant, windowSpanMs, type WindowSpec } from './window.js';

export interface SubjectRef {
  kind: ScopeKind;
  id: string;
  name: string;
}

/** One budget as `/quota` shows it (DESIGN "Quota status"). */
export interface BudgetStatus {
  id: string;
  source: 'admin' | 'config';
  scope: string;
  window: WindowSpec;
  usedTokens: number;
  reservedTokens: number;
  limitTokens: number | null;
  remainingTokens: number | null;
  usedUsd: number;
  reservedUsd: number;
  limitUsd: number | null;
  remainingUsd: number | null;
  percentage: number;
  status: StatusLevel;
  resetsAt: string | null;
  onLimit: string;
  /** The models it alone counts and limits; sent only for a budget that names models (absent: every model). */
  models?: string[] | null;
  /** Its fallback rules: where requests go at or past each percentage; sent only for a budget that has them. */
  fallback?: FallbackRule[];
  /**
   * Grants in force: what they add (limitTokens / limitUsd include it), and each one. Sent only for
   * a budget that has one.
   */
  grantedTokens?: number;
  grantedUsd?: number;
  grants?: GrantStatus[];
}

/** A grant as /quota shows it. */
export interface GrantStatus {
  id: string;
  tokens: number;
  usd: number;
  decidedBy: string;
  endsAt: string;
  reason: string | null;
}

/** The `/quota` answer: the binding budget's five fields on top, every budget below. */
export interface QuotaStatus {
  subject: SubjectRef;
  usage: number | null;
  limit: number | null;
  unit: Unit | null;
  percentage: number | null;
  remaining: number | null;
  status: StatusLevel;
  nextReset: string | null;
  budgets: BudgetStatus[];
}

// Spelled out rather than spread: V8 builds `{...usage, more}` through a slow path (~5 µs here).
const figuresOf = ({ usage, budget }: BudgetState): BudgetFigures => ({
  usedTokens: usage.usedTokens,
  reservedTokens: usage.reservedTokens,
  usedMicros: usage.usedMicros,
  reservedMicros: usage.reservedMicros,
  limitTokens: budget.limitTokens,
  limitMicros: budget.limitMicros,
  windowSpanMs: windowSpanMs(budget.window),
});

/** Money leaves the service in dollars; micro-dollars are exact, so six decimals lose nothing. */
const usd = (micros: number): number => microsToUsd(micros);

export function budgetStatus(state: BudgetState, levels: StatusLevels): BudgetStatus {
  const f = figuresOf(state);
  const binding = bindingUnit(f, levels);
  const { budget, usage } = state;
  const remainingOf = (limit: number | null, used: number, reserved: number) =>
    limit === null ? null : Math.max(0, limit - used - reserved);
  const remainingMicros = remainingOf(budget.limitMicros, usage.usedMicros, usage.reservedMicros);
  return {
    id: budget.id,
    source: budget.source,
    scope: formatScope(budget.scope),
    window: budget.window,
    usedTokens: usage.usedTokens,
    reservedTokens: usage.reservedTokens,
    limitTokens: budget.limitTokens,
    remainingTokens: remainingOf(budget.limitTokens, usage.usedTokens, usage.reservedTokens),
    usedUsd: usd(usage.usedMicros),
    reservedUsd: usd(usage.reservedMicros),
    limitUsd: budget.limitMicros === null ? null : usd(budget.limitMicros),
    remainingUsd: remainingMicros === null ? null : usd(remainingMicros),
    percentage: binding ? percentageOf(binding.used, binding.limit) : 0,
    status: binding ? readingLevel(binding, levels) : 'normal',
    resetsAt: state.resetsAt === null ? null : formatInstant(state.resetsAt, budget.window),
    onLimit: budget.onLimit,
    // Only on the budgets that have them, so the answer of a plain budget is as it always was.
    ...(budget.models ? { models: budget.models } : {}),
    ...(budget.fallback?.length ? { fallback: budget.fallback } : {}),
    ...(state.grants?.length ? grantFields(state.grants, budget.window) : {}),
  };
}

/** The binding budget's figures: the top of the `/quota` document, and the proxy's x-quota-* headers. */
export type QuotaHeadline = Pick<QuotaStatus, 'usage' | 'limit' | 'unit' | 'percentage' | 'remaining' | 'status' | 'nextReset'>;

const NO_HEADLINE: QuotaHeadline = { usage: null, limit: null, unit: null, percentage: null, remaining: null, status: 'normal', nextReset: null };

/**
 * The headline alone, without a status for every budget: the proxy writes it on every answer, and
 * only the binding budget's reset time is formatted.
 */
export function quotaHeadline(states: readonly BudgetState[], levels: StatusLevels): QuotaHeadline {
  const figures = states.map(figuresOf);
  const index = bindingIndex(figures, levels);
  const top = states[index];
  const topFigures = figures[index];
  const binding = topFigures ? bindingUnit(topFigures, levels) : undefined;
  if (!top || !binding) return NO_HEADLINE;
  const money = binding.unit === 'usd';
  return {
    usage: money ? usd(binding.used) : binding.used,
    limit: money ? usd(binding.limit) : binding.limit,
    unit: binding.unit,
    percentage: percentageOf(binding.used, binding.limit),
    remaining: money ? usd(binding.remaining) : binding.remaining,
    status: readingLevel(binding, levels),
    nextReset: top.resetsAt === null ? null : formatInstant(top.resetsAt, top.budget.window),
  };
}

/** Builds the `/quota` document for a subject from the states of every budget that applies to it. */
export function quotaStatus(subject: SubjectRef, states: readonly BudgetState[], levels: StatusLevels): QuotaStatus {
  return { subject, ...quotaHeadline(states, levels), budgets: states.map((s) => budgetStatus(s, levels)) };
}

/** What a budget's grants in force add, and each one, for /quota. */
function grantFields(grants: readonly Grant[], window: WindowSpec): Pick<BudgetStatus, 'grantedTokens' | 'grantedUsd' | 'grants'> {
  const { tokens, micros } = grantTotals(grants);
  return {
    grantedTokens: tokens,
    grantedUsd: usd(micros),
    // A reason is the asker's own words: shown on their own budget only, not on one everybody shares.
    grants: grants.map((g) => ({
      id: g.id,
      tokens: g.tokens,
      usd: usd(g.micros),
      decidedBy: g.decidedBy,
      endsAt: formatInstant(g.endsAt, window),
      reason: g.scope.kind === 'user' || g.scope.kind === 'key' ? g.reason : null,
    })),
  };
}
