import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STATUS_LEVELS,
  bindingIndex,
  bindingUnit,
  microsToUsd,
  percentageOf,
  readingLevel,
  statusLevel,
  unitReadings,
  usdToMicros,
  type BudgetFigures,
  type StatusLevel,
  type StatusLevels,
  type UnitReading,
} from './status.js';
import { windowSpanMs } from './window.js';

const DAY_SPAN = windowSpanMs({ kind: 'day', timeZone: 'UTC' });
const WEEK_SPAN = windowSpanMs({ kind: 'week', timeZone: 'UTC' });
const MONTH_SPAN = windowSpanMs({ kind: 'month', timeZone: 'UTC' });
const TOTAL_SPAN = windowSpanMs({ kind: 'total' });
const ROLLING_5H_SPAN = windowSpanMs({ kind: 'rolling', hours: 5 });

const figures = (f: Partial<BudgetFigures>): BudgetFigures => ({
  usedTokens: 0,
  reservedTokens: 0,
  limitTokens: null,
  usedMicros: 0,
  reservedMicros: 0,
  limitMicros: null,
  windowSpanMs: DAY_SPAN,
  ...f,
});

describe('statusLevel with the default levels (80 / 95 / 100)', () => {
  it('defaults are 80 / 95 / 100', () => {
    expect(DEFAULT_STATUS_LEVELS).toEqual({ warning: 80, critical: 95, exceeded: 100 });
  });

  it.each<[string, number, StatusLevel]>([
    ['0 %', 0, 'normal'],
    ['50 %', 0.5, 'normal'],
    ['79.99 %', 0.7999, 'normal'],
    ['79 999 of 100 000', 79_999 / 100_000, 'normal'],
    ['80 %', 0.8, 'warning'],
    ['80 000 of 100 000', 80_000 / 100_000, 'warning'],
    ['4 of 5', 4 / 5, 'warning'],
    ['94.99 %', 0.9499, 'warning'],
    ['95 %', 0.95, 'critical'],
    ['19 of 20', 19 / 20, 'critical'],
    ['99.99 %', 0.9999, 'critical'],
    ['999 999 of 1 000 000', 999_999 / 1_000_000, 'critical'],
    ['100 %', 1, 'exceeded'],
    ['100.01 %', 1.0001, 'exceeded'],
    ['250 %', 2.5, 'exceeded'],
    ['zero limit used (Infinity)', Infinity, 'exceeded'],
  ])('%s → %s', (_label, ratio, expected) => {
    expect(statusLevel(ratio)).toBe(expected);
    expect(statusLevel(ratio, DEFAULT_STATUS_LEVELS)).toBe(expected);
  });
});

describe('statusLevel with custom levels', () => {
  const levels: StatusLevels = { warning: 50, critical: 75, exceeded: 120 };
  it.each<[string, StatusLevel, StatusLevels, number]>([
    ['49.99 % of 50/75/120', 'normal', levels, 0.4999],
    ['50 % of 50/75/120', 'warning', levels, 0.5],
    ['74.99 % of 50/75/120', 'warning', levels, 0.7499],
    ['75 % of 50/75/120', 'critical', levels, 0.75],
    ['100 % of 50/75/120 is not yet exceeded', 'critical', levels, 1],
    ['119.99 % of 50/75/120', 'critical', levels, 1.1999],
    ['120 % of 50/75/120', 'exceeded', levels, 1.2],
    // levels whose ratio×100 is not exact in floating point (0.57 × 100 = 56.99999999999999)
    ['57 of 100 with warning 57', 'warning', { warning: 57, critical: 90, exceeded: 100 }, 57 / 100],
    ['56.99 % with warning 57', 'normal', { warning: 57, critical: 90, exceeded: 100 }, 0.5699],
    ['29 of 100 with warning 29', 'warning', { warning: 29, critical: 58, exceeded: 100 }, 29 / 100],
    ['58 of 100 with critical 58', 'critical', { warning: 29, critical: 58, exceeded: 100 }, 58 / 100],
    ['115 of 100 with exceeded 115', 'exceeded', { warning: 80, critical: 95, exceeded: 115 }, 115 / 100],
    // equal levels: the highest matching level wins
    ['all levels at 90, 90 %', 'exceeded', { warning: 90, critical: 90, exceeded: 90 }, 0.9],
    ['all levels at 90, 89.9 %', 'normal', { warning: 90, critical: 90, exceeded: 90 }, 0.899],
    ['warning 0: everything is at least warning', 'warning', { warning: 0, critical: 95, exceeded: 100 }, 0],
  ])('%s → %s', (_label, expected, custom, ratio) => {
    expect(statusLevel(ratio, custom)).toBe(expected);
  });
});

describe('statusLevel agrees with exact integer arithmetic and with percentageOf', () => {
  // For every whole-percent level 1..1000: the least `used` reaching it must reach it, one less must not,
  // and the shown percentage reaches the level exactly when the status does.
  it.each<[number]>([[1], [3], [7], [100], [1_000], [99_999], [1_000_000], [123_456_789]])('limit %s', (limit) => {
    const misses: string[] = [];
    for (let level = 1; level <= 1_000; level++) {
      const levels: StatusLevels = { warning: level, critical: level, exceeded: level };
      const least = Number((BigInt(level) * BigInt(limit) + 99n) / 100n); // ceil(level% of limit)
      for (const used of [least - 1, least]) {
        if (used < 0) continue;
        const reaches = BigInt(used) * 100n >= BigInt(level) * BigInt(limit);
        const status = statusLevel(used / limit, levels);
        if ((status === 'exceeded') !== reaches) misses.push(`${used}/${limit} at ${level}%: ${status}`);
        if (percentageOf(used, limit) >= level !== reaches) misses.push(`${used}/${limit} shows ${percentageOf(used, limit)} at ${level}%`);
      }
    }
    expect(misses).toEqual([]);
  });
});

describe('readingLevel: holds count towards the level, but only use is exceeded', () => {
  const tokens = (used: number, reserved: number, limit: number): UnitReading => unitReadings(figures({ usedTokens: used, reservedTokens: reserved, limitTokens: limit }))[0]!;

  it.each<[string, UnitReading, StatusLevel]>([
    ['nothing used or held', tokens(0, 0, 100_000), 'normal'],
    ['used only: as statusLevel', tokens(85_000, 0, 100_000), 'warning'],
    ['held alone reaches warning', tokens(0, 80_000, 100_000), 'warning'],
    ['used + held reach critical', tokens(50_000, 45_000, 100_000), 'critical'],
    ['the whole budget held, nothing used: critical, not normal', tokens(0, 100_000, 100_000), 'critical'],
    ['used + held at the limit, used below it: critical, not exceeded', tokens(99_999, 1, 100_000), 'critical'],
    ['used at the limit: exceeded, held or not', tokens(100_000, 0, 100_000), 'exceeded'],
    ['used past the limit with holds: exceeded', tokens(100_500, 2_000, 100_000), 'exceeded'],
    ['just below warning with holds', tokens(40_000, 39_999, 100_000), 'normal'],
    ['zero limit, nothing used', tokens(0, 0, 0), 'normal'],
    ['zero limit, something held: at most critical', tokens(0, 5, 0), 'critical'],
  ])('%s → %s', (_label, reading, expected) => {
    expect(readingLevel(reading)).toBe(expected);
  });

  it('with custom levels: held room reaches critical, never exceeded', () => {
    const levels: StatusLevels = { warning: 50, critical: 75, exceeded: 120 };
    expect(readingLevel(tokens(0, 60, 100), levels)).toBe('warning');
    expect(readingLevel(tokens(70, 30, 100), levels)).toBe('critical');
    expect(readingLevel(tokens(100, 30, 100), levels)).toBe('critical');
    expect(readingLevel(tokens(120, 0, 100), levels)).toBe('exceeded');
  });
});

describe('percentageOf: one decimal, rounded down', () => {
  it.each<[number, number, number]>([
    [78_500, 100_000, 78.5],
    [79_999, 100_000, 79.9],
    [80_000, 100_000, 80],
    [99_999, 100_000, 99.9],
    [100_000, 100_000, 100],
    [150_000, 100_000, 150],
    [1, 3, 33.3],
    [2, 3, 66.6],
    [1, 1_000_000, 0],
    [999, 1_000_000, 0],
    [1_000, 1_000_000, 0.1],
    [0, 100, 0],
    [57, 100, 57],
    [29, 100, 29],
    // past 2^53 / 1000: exact, not rounded by floating point
    [999_999_999_999_999, 1_000_000_000_000_000, 99.9],
    [1_000_000_000_000_000, 1_000_000_000_000_000, 100],
    [785_000_000_000_001, 1_000_000_000_000_000, 78.5],
    // zero limit
    [0, 0, 0],
    [1, 0, 100],
    [500, 0, 100],
  ])('%s of %s → %s', (used, limit, expected) => {
    expect(percentageOf(used, limit)).toBe(expected);
  });
});

describe('unitReadings / bindingUnit', () => {
  it.each<[string, Partial<BudgetFigures>, UnitReading[]]>([
    ['no limits', {}, []],
    [
      'tokens only',
      { usedTokens: 300, reservedTokens: 200, limitTokens: 1000 },
      [{ unit: 'tokens', used: 300, reserved: 200, limit: 1000, remaining: 500, ratio: 0.3 }],
    ],
    [
      'usd only',
      { usedMicros: 250_000, reservedMicros: 50_000, limitMicros: 1_000_000 },
      [{ unit: 'usd', used: 250_000, reserved: 50_000, limit: 1_000_000, remaining: 700_000, ratio: 0.25 }],
    ],
    [
      'both, tokens first',
      { usedTokens: 10, limitTokens: 100, usedMicros: 20, limitMicros: 100 },
      [
        { unit: 'tokens', used: 10, reserved: 0, limit: 100, remaining: 90, ratio: 0.1 },
        { unit: 'usd', used: 20, reserved: 0, limit: 100, remaining: 80, ratio: 0.2 },
      ],
    ],
    [
      'remaining never negative: over the limit',
      { usedTokens: 1_200, limitTokens: 1_000 },
      [{ unit: 'tokens', used: 1_200, reserved: 0, limit: 1_000, remaining: 0, ratio: 1.2 }],
    ],
    [
      'remaining never negative: reserved beyond the limit',
      { usedTokens: 600, reservedTokens: 500, limitTokens: 1_000 },
      [{ unit: 'tokens', used: 600, reserved: 500, limit: 1_000, remaining: 0, ratio: 0.6 }],
    ],
    [
      'reserved does not count in the ratio',
      { usedTokens: 0, reservedTokens: 999, limitTokens: 1_000 },
      [{ unit: 'tokens', used: 0, reserved: 999, limit: 1_000, remaining: 1, ratio: 0 }],
    ],
    [
      'zero limit unused',
      { limitTokens: 0 },
      [{ unit: 'tokens', used: 0, reserved: 0, limit: 0, remaining: 0, ratio: 0 }],
    ],
    [
      'zero limit used',
      { usedMicros: 1, limitMicros: 0 },
      [{ unit: 'usd', used: 1, reserved: 0, limit: 0, remaining: 0, ratio: Infinity }],
    ],
  ])('%s', (_label, f, expected) => {
    expect(unitReadings(figures(f))).toEqual(expected);
  });

  it.each<[string, Partial<BudgetFigures>, 'tokens' | 'usd' | undefined]>([
    ['no limits → undefined', {}, undefined],
    ['tokens only', { usedTokens: 1, limitTokens: 10 }, 'tokens'],
    ['usd only', { usedMicros: 1, limitMicros: 10 }, 'usd'],
    ['usd nearer exhaustion', { usedTokens: 50, limitTokens: 100, usedMicros: 90, limitMicros: 100 }, 'usd'],
    ['tokens nearer exhaustion', { usedTokens: 95, limitTokens: 100, usedMicros: 90, limitMicros: 100 }, 'tokens'],
    ['tie → tokens', { usedTokens: 50, limitTokens: 100, usedMicros: 500, limitMicros: 1_000 }, 'tokens'],
    ['zero usd limit used beats tokens over limit', { usedTokens: 500, limitTokens: 100, usedMicros: 1, limitMicros: 0 }, 'usd'],
    [
      'small holds do not decide: the used ratio does',
      { usedTokens: 10, reservedTokens: 50, limitTokens: 100, usedMicros: 20, limitMicros: 100 },
      'usd',
    ],
    [
      'a unit whose rest is all held binds: its level (critical) beats a higher used ratio',
      { usedTokens: 10, reservedTokens: 90, limitTokens: 100, usedMicros: 20, limitMicros: 100 },
      'tokens',
    ],
  ])('bindingUnit: %s', (_label, f, expected) => {
    expect(bindingUnit(figures(f))?.unit).toBe(expected);
  });

  it('bindingUnit returns the full reading of the binding unit', () => {
    expect(bindingUnit(figures({ usedTokens: 10, limitTokens: 100, usedMicros: 600, reservedMicros: 100, limitMicros: 1_000 }))).toEqual({
      unit: 'usd',
      used: 600,
      reserved: 100,
      limit: 1_000,
      remaining: 300,
      ratio: 0.6,
    });
  });
});

describe('bindingIndex', () => {
  const t = (used: number, limit: number, span = DAY_SPAN): BudgetFigures =>
    figures({ usedTokens: used, limitTokens: limit, windowSpanMs: span });
  const usd = (used: number, limit: number, span = DAY_SPAN): BudgetFigures =>
    figures({ usedMicros: used, limitMicros: limit, windowSpanMs: span });

  it.each<[string, BudgetFigures[], number]>([
    ['empty list', [], -1],
    ['single budget', [t(0, 100)], 0],
    ['highest ratio wins', [t(10, 100), t(50, 100), t(20, 100)], 1],
    ['highest ratio wins at the end', [t(10, 100), t(50, 100), t(51, 100)], 2],
    ['ratio, not absolute use', [t(900, 10_000), t(50, 100)], 1],
    ['across units: usd ratio beats tokens ratio', [t(70, 100), usd(800_000, 1_000_000)], 1],
    ['across units: tokens ratio beats usd ratio', [usd(700_000, 1_000_000), t(80, 100)], 1],
    [
      'a budget limiting both units ranks by its binding unit',
      [t(60, 100), figures({ usedTokens: 10, limitTokens: 100, usedMicros: 90, limitMicros: 100 })],
      1,
    ],
    ['tie on ratio → longer window (month over day)', [t(50, 100, DAY_SPAN), t(50, 100, MONTH_SPAN)], 1],
    ['tie on ratio → longer window (week over rolling 5h)', [t(5, 10, WEEK_SPAN), t(50, 100, ROLLING_5H_SPAN)], 0],
    ['tie on ratio → total (endless) wins', [t(1, 2, MONTH_SPAN), t(1, 2, TOTAL_SPAN), t(1, 2, WEEK_SPAN)], 1],
    ['tie on ratio and window → earlier index', [t(50, 100, WEEK_SPAN), t(5, 10, WEEK_SPAN)], 0],
    ['all unused, same window → first', [t(0, 100), t(0, 100), t(0, 100)], 0],
    ['all unused → longest window', [t(0, 100, DAY_SPAN), t(0, 100, MONTH_SPAN), t(0, 100, WEEK_SPAN)], 1],
    ['higher ratio beats longer window', [t(51, 100, DAY_SPAN), t(50, 100, TOTAL_SPAN)], 0],
    ['Infinity (zero limit used) beats everything', [t(500, 100, TOTAL_SPAN), t(1, 0, DAY_SPAN)], 1],
    ['two Infinity ratios → longer window', [t(1, 0, DAY_SPAN), t(1, 0, WEEK_SPAN)], 1],
    ['a budget with no limits counts as ratio 0', [figures({ windowSpanMs: MONTH_SPAN }), t(1, 100)], 1],
    ['a budget whose rest is all held beats one used more', [t(50, 100), figures({ usedTokens: 0, reservedTokens: 100, limitTokens: 100 })], 1],
    ['held to the same level: the used ratio decides', [figures({ usedTokens: 10, reservedTokens: 90, limitTokens: 100 }), figures({ usedTokens: 20, reservedTokens: 80, limitTokens: 100 })], 1],
    ['exceeded (used) beats all held', [figures({ usedTokens: 0, reservedTokens: 100, limitTokens: 100 }), t(100, 100)], 1],
  ])('%s → %s', (_label, budgets, expected) => {
    expect(bindingIndex(budgets)).toBe(expected);
  });
});

describe('micro-dollar conversion', () => {
  it.each<[number, number]>([
    [0, 0],
    [1, 1_000_000],
    [0.000001, 1],
    [12.34, 12_340_000],
    [0.1 + 0.2, 300_000],
  ])('usdToMicros(%s) → %s', (usd, micros) => {
    expect(usdToMicros(usd)).toBe(micros);
  });

  it.each<[number, number]>([
    [0, 0],
    [1, 0.000001],
    [12_340_000, 12.34],
  ])('microsToUsd(%s) → %s', (micros, usd) => {
    expect(microsToUsd(micros)).toBe(usd);
  });
});
