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
  /** Held by requests in flight (see `readingLevel`). */
  reserved: number;
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

const ratioOf = (amount: number, limit: number): number => (limit > 0 ? amount / limit : amount > 0 ? Infinity : 0);

function reading(unit: Unit, used: number, reserved: number, limit: number): UnitReading {
  return { unit, used, reserved, limit, remaining: Math.max(0, limit - used - reserved), ratio: ratioOf(used, limit) };
}

/**
 * A unit's status level. Room held by requests in flight is room no other request can have, so
 * the level is read from (used + reserved) / limit: a budget whose rest is all held is not
 * `normal`. But held is not spent (a request may settle for less, or fail and cost nothing), so
 * only `used` reaches `exceeded`; held room alone is at most `critical`.
 */
export function readingLevel(r: UnitReading, levels: StatusLevels = DEFAULT_STATUS_LEVELS): StatusLevel {
  const level = statusLevel(ratioOf(r.used + r.reserved, r.limit), levels);
  if (level === 'exceeded' && statusLevel(r.ratio, levels) !== 'exceeded') return 'critical';
  return level;
}

const LEVEL_RANK: Record<StatusLevel, number> = { normal: 0, warning: 1, critical: 2, exceeded: 3 };

/** Nearer to exhaustion: the higher level, then the higher used ratio. */
const nearer = (a: UnitReading, b: UnitReading, levels: StatusLevels): boolean => {
  const byLevel = LEVEL_RANK[readingLevel(a, levels)] - LEVEL_RANK[readingLevel(b, levels)];
  return byLevel > 0 || (byLevel === 0 && a.ratio > b.ratio);
};

/**
 * The unit that is nearest to exhaustion: the highest level (holds count, see `readingLevel`),
 * then the highest used ratio, tokens on a tie. A budget limits at least one unit, so this is
 * never undefined for a stored budget.
 */
export function bindingUnit(f: BudgetFigures, levels: StatusLevels = DEFAULT_STATUS_LEVELS): UnitReading | undefined {
  let best: UnitReading | undefined;
  for (const r of unitReadings(f)) if (best === undefined || nearer(r, best, levels)) best = r;
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
 * The binding budget is the one nearest to exhaustion: the highest level of its binding unit (holds
 * count), then the highest used ratio. On a tie the one with the longer window binds (it holds the
 * user back longer), then the earlier one in the list (callers list budgets from the narrowest
 * scope out). -1 for no budgets.
 */
export function bindingIndex(budgets: readonly BudgetFigures[], levels: StatusLevels = DEFAULT_STATUS_LEVELS): number {
  let best = -1;
  let bestRank = -1;
  let bestRatio = -1;
  let bestSpan = -1;
  budgets.forEach((f, i) => {
    const unit = bindingUnit(f, levels);
    const rank = unit ? LEVEL_RANK[readingLevel(unit, levels)] : 0;
    const ratio = unit?.ratio ?? 0;
    if (rank > bestRank || (rank === bestRank && (ratio > bestRatio || (ratio === bestRatio && f.windowSpanMs > bestSpan)))) {
      best = i;
      bestRank = rank;
      bestRatio = ratio;
      bestSpan = f.windowSpanMs;
    }
  });
  return best;
}

export const microsToUsd = (micros: number): number => micros / 1_000_000;
export const usdToMicros = (usd: number): number => Math.round(usd * 1_000_000);
