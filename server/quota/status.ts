export type StatusLevel = 'normal' | 'warning' | 'critical' | 'exceeded';
export type Unit = 'tokens' | 'usd';

/** Percentages at which a budget's status changes (DESIGN: 80 / 95 / 100). */
export interface StatusLevels {
  warning: number;
  critical: number;
  exceeded: number;
}

export const DEFAULT_STATUS_LEVELS: StatusLevels = { warning: 80, critical: 95, exceeded: 100 };

/** A budget's numbers at one instant, in integer units: tokens and micro-dollars. */
export interface BudgetFigures {
  usedTokens: number;
  reservedTokens: number;
  limitTokens: number | null;
  usedMicros: number;
  reservedMicros: number;
  limitMicros: number | null;
  /** Nominal window length (see `windowSpanMs`): ranks equally used budgets. */
  windowSpanMs: number;
}

export interface UnitReading {
  unit: Unit;
  used: number;
  limit: number;
  /** What can still be admitted: limit − used − reserved, never below zero. */
  remaining: number;
  /** used / limit, unrounded. Infinity for a zero limit with any use. */
  ratio: number;
}

/** The readings of each unit the budget limits (tokens first). */
export function unitReadings(f: BudgetFigures): UnitReading[] {
  const readings: UnitReading[] = [];
  if (f.limitTokens !== null) readings.push(reading('tokens', f.usedTokens, f.reservedTokens, f.limitTokens));
  if (f.limitMicros !== null) readings.push(reading('usd', f.usedMicros, f.reservedMicros, f.limitMicros));
  return readings;
}

function reading(unit: Unit, used: number, reserved: number, limit: number): UnitReading {
  const ratio = limit > 0 ? used / limit : used > 0 ? Infinity : 0;
  return { unit, used, limit, remaining: Math.max(0, limit - used - reserved), ratio };
}

/**
 * The unit that is nearest to exhaustion: the one with the highest ratio, tokens on a tie.
 * A budget limits at least one unit, so this is never undefined for a stored budget.
 */
export function bindingUnit(f: BudgetFigures): UnitReading | undefined {
  let best: UnitReading | undefined;
  for (const r of unitReadings(f)) if (best === undefined || r.ratio > best.ratio) best = r;
  return best;
}

/**
 * A percentage with one decimal, rounded down so a budget never shows 100.0 % (or 80.0 %) before
 * its status says so. Integer arithmetic: 78500 of 100000 is exactly 78.5.
 */
export function percentageOf(used: number, limit: number): number {
  if (limit <= 0) return used > 0 ? 100 : 0;
  const scaled = used * 1000;
  // Past 2^53 the product is no longer exact; integers up to the 1e15 limit stay exact in BigInt.
  if (scaled > Number.MAX_SAFE_INTEGER) return Number((BigInt(used) * 1000n) / BigInt(limit)) / 10;
  return Math.floor(scaled / limit) / 10;
}

export function statusLevel(ratio: number, levels: StatusLevels = DEFAULT_STATUS_LEVELS): StatusLevel {
  // Compare ratios, not `ratio * 100`: 57/100 * 100 is 56.99999999999999 and would miss a level of 57.
  // Both sides are correctly rounded quotients, so a ratio at or above a level never compares below it.
  if (ratio >= levels.exceeded / 100) return 'exceeded';
  if (ratio >= levels.critical / 100) return 'critical';
  if (ratio >= levels.warning / 100) return 'warning';
  return 'normal';
}

/**
 * The binding budget is the one nearest to exhaustion: the highest ratio in any unit it limits.
 * On a tie the one with the longer window binds (it holds the user back longer), then the earlier
 * one in the list (callers list budgets from the narrowest scope out). -1 for no budgets.
 */
export function bindingIndex(budgets: readonly BudgetFigures[]): number {
  let best = -1;
  let bestRatio = -1;
  let bestSpan = -1;
  budgets.forEach((f, i) => {
    const ratio = bindingUnit(f)?.ratio ?? 0;
    if (ratio > bestRatio || (ratio === bestRatio && f.windowSpanMs > bestSpan)) {
      best = i;
      bestRatio = ratio;
      bestSpan = f.windowSpanMs;
    }
  });
  return best;
}

export const microsToUsd = (micros: number): number => micros / 1_000_000;
export const usdToMicros = (usd: number): number => Math.round(usd * 1_000_000);
