import type { DefaultBudget } from '../config/schema.js';
import { modelGlobToRegExp } from '../util/model-pattern.js';
import { formatScope, type Scope } from './scope.js';
import { usdToMicros } from './status.js';
import { windowPeriod, type WindowSpec } from './window.js';

export type OnLimit = 'reject' | 'downgrade' | 'alert-only';

/** At or past `at` percent of its budget, a request for a model the budget covers goes to `to`. */
export interface FallbackRule {
  at: number;
  to: string;
}

/** A budget as the engine uses it: one limit on one scope over one window. */
export interface Budget {
  /** Database id, or `config:SCOPE|PERIOD` for a default from the config file. */
  id: string;
  source: 'admin' | 'config';
  scope: Scope;
  window: WindowSpec;
  limitTokens: number | null;
  limitMicros: number | null;
  thresholds: number[];
  onLimit: OnLimit;
  downgradeTo: string | null;
  /** The model ids or globs it counts and limits, sorted; null or absent: every model. */
  models?: string[] | null;
  /** Its fallback rules in increasing order of `at` (empty or absent: none). */
  fallback?: FallbackRule[];
  /**
   * Identity of the budget's counters: `SCOPE|PERIOD`, where the period names the window and the
   * models (see budgetPeriod). One budget per scope and period, so an admin override replaces the
   * config default of the same period for that scope.
   */
  key: string;
}

/** A budget's identity within its scope: its window's period, and the models it is limited to. */
export const budgetPeriod = (window: WindowSpec, models: readonly string[] | null = null): string =>
  models === null ? windowPeriod(window) : `${windowPeriod(window)} models=${models.join(',')}`;

export const budgetKey = (scope: Scope, window: WindowSpec, models: readonly string[] | null = null): string =>
  `${formatScope(scope)}|${budgetPeriod(window, models)}`;

const modelPatterns = new Map<string, RegExp[]>();

/** Whether a budget counts and limits `model`: it names no models, or one of its globs matches. */
export function coversModel({ models }: Pick<Budget, 'models'>, model: string): boolean {
  if (!models) return true;
  const id = models.join('\n');
  let patterns = modelPatterns.get(id);
  if (!patterns) {
    patterns = models.map(modelGlobToRegExp);
    if (modelPatterns.size >= 10_000) modelPatterns.clear();
    modelPatterns.set(id, patterns);
  }
  return patterns.some((p) => p.test(model));
}

/** The budgets of a request's scopes that apply to its model (those of other models do not). */
export const budgetsForModel = <B extends Pick<Budget, 'models'>>(budgets: readonly B[], model: string | null): B[] =>
  budgets.filter((b) => !b.models || (model !== null && coversModel(b, model)));

/** One regular expression for a budget's models (null: every model), as the stores match them in SQL. */
export const modelsRegExpSource = (models: readonly string[] | null | undefined): string | null =>
  !models ? null : models.map((m) => modelGlobToRegExp(m).source).join('|');

/**
 * The rules a budget routes by: its fallback rules, or `downgrade`'s shorthand (at its limit, to
 * its cheaper model).
 */
export const routingRules = (budget: Budget): readonly FallbackRule[] =>
  budget.fallback?.length ? budget.fallback : budget.onLimit === 'downgrade' && budget.downgradeTo !== null ? [{ at: 100, to: budget.downgradeTo }] : [];

/**
 * How admission treats a budget at its limit: `reject` shrinks an answer's output to what is left;
 * `downgrade` (and a budget with fallback rules) does not, and admits a routed request up to its
 * hard ceiling; `whole` does not shrink an answer either, and has no ceiling. An upstream's budget
 * is `whole` while another upstream can take the request (it goes there instead of being cut
 * short), else `reject`; it never has a ceiling: a provider's plan is not stretched.
 */
export type AdmissionMode = OnLimit | 'whole';

export const admissionOnLimit = (budget: Budget, failover = false): AdmissionMode => {
  if (budget.onLimit === 'alert-only') return 'alert-only';
  if (budget.scope.kind === 'upstream') return failover ? 'whole' : 'reject';
  if (budget.fallback?.length) return 'downgrade';
  return budget.onLimit;
};

/** The config's default budgets as they apply to one concrete scope. */
export function defaultBudgetsFor(scope: Scope, defaults: readonly DefaultBudget[], defaultThresholds: number[]): Budget[] {
  return defaults
    .filter((d) => d.scope === scope.kind)
    .map((d) => {
      const models = d.models ?? null;
      const key = budgetKey(scope, d.window, models);
      return {
        id: `config:${key}`,
        source: 'config' as const,
        scope,
        window: d.window,
        limitTokens: d.limitTokens,
        limitMicros: d.limitUsd === null ? null : usdToMicros(d.limitUsd),
        thresholds: d.thresholds ?? defaultThresholds,
        onLimit: d.onLimit,
        downgradeTo: d.downgradeTo ?? null,
        ...(models === null ? {} : { models }),
        ...(d.fallback?.length ? { fallback: d.fallback } : {}),
        key,
      };
    });
}

/**
 * Every budget that applies to the given scopes: the stored ones, plus each config default whose
 * period the scope has no stored budget for. Keeps the order of `scopes`.
 */
export function resolveBudgets(
  scopes: readonly Scope[],
  stored: readonly Budget[],
  defaults: readonly DefaultBudget[],
  defaultThresholds: number[],
): Budget[] {
  const storedKeys = new Set(stored.map((b) => b.key));
  const result: Budget[] = [];
  for (const scope of scopes) {
    const name = formatScope(scope);
    for (const b of stored) if (formatScope(b.scope) === name) result.push(b);
    for (const d of defaultBudgetsFor(scope, defaults, defaultThresholds)) if (!storedKeys.has(d.key)) result.push(d);
  }
  return result;
}

/** What grants add together, in tokens and micro-dollars. */
export function grantTotals(grants: readonly { tokens: number; micros: number }[]): { tokens: number; micros: number } {
  let tokens = 0;
  let micros = 0;
  for (const g of grants) {
    tokens += g.tokens;
    micros += g.micros;
  }
  return { tokens, micros };
}

/**
 * A budget with the grants active at `now` added to its limits (only to a limit it has: a token
 * grant does not give a dollar budget a token limit), and those grants. The budget itself when none is.
 */
export function withGrants<G extends { budgetKey: string; tokens: number; micros: number; startsAt: number; endsAt: number }>(
  budget: Budget,
  grants: readonly G[] | undefined,
  now: number,
): { budget: Budget; active: G[] } {
  const active = grants?.filter((g) => g.budgetKey === budget.key && g.startsAt <= now && now < g.endsAt) ?? [];
  if (active.length === 0) return { budget, active };
  const { tokens, micros } = grantTotals(active);
  return {
    budget: {
      ...budget,
      limitTokens: budget.limitTokens === null ? null : budget.limitTokens + tokens,
      limitMicros: budget.limitMicros === null ? null : budget.limitMicros + micros,
    },
    active,
  };
}
