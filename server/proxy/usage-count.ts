/**
 * More tokens than any one request can use (context windows are at most a few million tokens, an
 * embeddings batch a few tens of millions): a count above it is the upstream's error, not a bill.
 */
export const MAX_PLAUSIBLE_TOKENS = 100_000_000;

/**
 * A token count of an upstream usage object: a whole number from 0 to MAX_PLAUSIBLE_TOKENS;
 * `undefined` when it is absent, `null` when it is there but cannot be a count (negative,
 * fractional, absurd, not a number).
 */
export function usageCount(v: unknown): number | null | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_PLAUSIBLE_TOKENS ? v : null;
}
