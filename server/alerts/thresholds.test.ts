import { describe, expect, it } from 'vitest';
import { crossedThresholds, PROJECTION_MIN_ELAPSED_MS, projectedExhaustion } from './thresholds.js';

const DEFAULT = [50, 80, 90, 95, 100];

describe('crossedThresholds', () => {
  it.each<[string, number, number, number, number[], number[]]>([
    ['nothing crossed', 0, 100, 1_000, DEFAULT, []],
    ['exactly 50 % crosses 50', 499, 500, 1_000, DEFAULT, [50]],
    ['one unit short does not', 498, 499, 1_000, DEFAULT, []],
    ['already at 50 % does not cross it again', 500, 700, 1_000, DEFAULT, []],
    ['several at once', 400, 910, 1_000, DEFAULT, [50, 80, 90]],
    ['all of them in one request', 0, 1_000, 1_000, DEFAULT, [50, 80, 90, 95, 100]],
    ['past 100 % from below', 990, 1_500, 1_000, DEFAULT, [100]],
    ['over the limit already: nothing new', 1_000, 1_500, 1_000, DEFAULT, []],
    ['thresholds above 100 %', 1_000, 1_500, 1_000, [100, 120, 150], [120, 150]],
    ['no change', 700, 700, 1_000, DEFAULT, []],
    ['a zero limit is crossed by any use', 0, 1, 0, DEFAULT, [50, 80, 90, 95, 100]],
    ['micro-dollars: $8.00 of $10.00 crosses 80', 7_999_999, 8_000_000, 10_000_000, DEFAULT, [80]],
    ['uneven limit: 80 % of 7 is 5.6, so 6 crosses and 5 does not', 5, 6, 7, DEFAULT, [80]],
  ])('%s', (_label, before, after, limit, thresholds, expected) => {
    expect(crossedThresholds(before, after, limit, thresholds)).toEqual(expected);
  });
});

describe('projectedExhaustion', () => {
  const H = 3_600_000;
  const start = Date.parse('2026-11-01T00:00:00Z');
  const reset = Date.parse('2026-12-01T00:00:00Z');

  it.each<[string, { used: number; limit: number; now: number; resetsAt: number | null }, number | null]>([
    // 50 % used after 10 days of a 30-day month: the rest lasts another 10 days → Nov 21.
    ['burning too fast', { used: 500, limit: 1_000, now: start + 240 * H, resetsAt: reset }, start + 480 * H],
    ['on pace: runs out exactly at the reset → no alert', { used: 500, limit: 1_000, now: start + 360 * H, resetsAt: reset }, null],
    ['slow: lasts past the reset', { used: 300, limit: 1_000, now: start + 400 * H, resetsAt: reset }, null],
    ['too early in the window', { used: 900, limit: 1_000, now: start + PROJECTION_MIN_ELAPSED_MS - 1, resetsAt: reset }, null],
    ['less than a quarter used', { used: 249, limit: 1_000, now: start + 2 * H, resetsAt: reset }, null],
    ['already at the limit', { used: 1_000, limit: 1_000, now: start + 2 * H, resetsAt: reset }, null],
    ['never resets', { used: 900, limit: 1_000, now: start + 2 * H, resetsAt: null }, null],
  ])('%s', (_label, input, expected) => {
    expect(projectedExhaustion({ ...input, windowStart: start })).toBe(expected);
  });
});
