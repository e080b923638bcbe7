import type { WindowSpec } from '../quota/window.js';

/**
 * The thresholds (percent of `limit`) that usage moved across when it went from `before` to
 * `after`: before < t % ≤ after. Integer arithmetic on tokens or micro-dollars, so exactly 80 % of
 * the limit crosses 80, and one unit less does not. A zero limit is crossed by any use.
 */
export function crossedThresholds(before: number, after: number, limit: number, thresholds: readonly number[]): number[] {
  if (after <= before) return [];
  if (limit <= 0) return before <= 0 ? [...thresholds] : [];
  return thresholds.filter((t) => before * 100 < t * limit && t * limit <= after * 100);
}

export interface ProjectionInput {
  used: number;
  limit: number;
  /** Start of the current window (epoch ms). */
  windowStart: number;
  now: number;
  /** When the window resets (epoch ms); null for windows that never do. */
  resetsAt: number | null;
}

/** Too early in a window, one busy minute would predict exhaustion for everyone. */
export const PROJECTION_MIN_ELAPSED_MS = 60 * 60_000;
export const PROJECTION_MIN_SHARE = 0.25;

/**
 * When the budget runs out at the burn rate of the window so far, if that is before its reset;
 * null otherwise. Says nothing until the window is an hour old and a quarter used, and nothing for
 * a budget already at its limit (the 100 % threshold speaks for it) or one that never resets.
 */
export function projectedExhaustion({ used, limit, windowStart, now, resetsAt }: ProjectionInput): number | null {
  const elapsed = now - windowStart;
  if (resetsAt === null || elapsed < PROJECTION_MIN_ELAPSED_MS || used >= limit || used < limit * PROJECTION_MIN_SHARE) return null;
  const at = now + Math.ceil(((limit - used) * elapsed) / used);
  return at < resetsAt ? at : null;
}

/** Projections make sense for calendar windows only: rolling ones slide, total ones never reset. */
export const projectable = (window: WindowSpec): boolean => window.kind === 'day' || window.kind === 'week' || window.kind === 'month';
