import { ESTIMATE_PROFILES, type EstimateProfile, type EstimateProfileName } from '../proxy/model-family.js';
import { createTokenCounter, type TokenCounter } from '../proxy/token-count.js';

/** An estimate profile that counts every text as o200k_base does. */
export const AS_O200K: EstimateProfile = { common: 1, cyrillic: 1, other: 1, brahmic: 1, perDigit: 0 };

/**
 * A token counter that counts every family's text as o200k_base does, as the fake upstreams count
 * (one token a " hi"): tests of an API's path then see exact numbers, budgets met to the token.
 * The safety factors lobe-quota applies to other families by default have their own tests
 * (estimates.test.ts, model-family.test.ts).
 */
export function countingAsTheFakes(): TokenCounter {
  const estimates = Object.fromEntries(Object.keys(ESTIMATE_PROFILES).map((name) => [name, AS_O200K])) as Record<EstimateProfileName, EstimateProfile>;
  return createTokenCounter({ estimates });
}
