import type { DefaultBudget } from '../config/schema.js';
import { formatScope, type Scope } from './scope.js';
import { usdToMicros } from './status.js';
import { windowPeriod, type WindowSpec } from './window.js';

export type OnLimit = 'reject' | 'downgrade' | 'alert-only';

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
  /**
   * Identity of the budget's counters: `SCOPE|PERIOD`. One budget per scope and period, so an
   * admin override replaces the config default of the same period for that scope.
   */
  key: string;
}

export const budgetKey = (scope: Scope, window: WindowSpec): string => `${formatScope(scope)}|${windowPeriod(window)}`;

/** The config's default budgets as they apply to one concrete scope. */
export function defaultBudgetsFor(scope: Scope, defaults: readonly DefaultBudget[], defaultThresholds: number[]): Budget[] {
  return defaults
    .filter((d) => d.scope === scope.kind)
    .map((d) => {
      const key = budgetKey(scope, d.window);
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
