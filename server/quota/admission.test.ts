import { describe, expect, it } from 'vitest';
import { admit, costMicros, outputRoom, type Admission, type BudgetUsage, type Quote } from './admission.js';
import { budgetKey, type Budget, type OnLimit } from './budgets.js';
import type { Scope } from './scope.js';
import type { WindowSpec } from './window.js';

interface BudgetSpec {
  limitTokens?: number | null;
  limitMicros?: number | null;
  onLimit?: OnLimit;
  scope?: Scope;
  window?: WindowSpec;
}

let nextId = 1;
/** A stored budget as `server/quota/budgets.ts` defines it. */
const budget = ({
  limitTokens = null,
  limitMicros = null,
  onLimit = 'reject',
  scope = { kind: 'user', id: 'alice' },
  window = { kind: 'month', timeZone: 'UTC' },
}: BudgetSpec): Budget => ({
  id: String(nextId++),
  source: 'admin',
  scope,
  window,
  limitTokens,
  limitMicros,
  thresholds: [50, 80, 100],
  onLimit,
  downgradeTo: onLimit === 'downgrade' ? 'gpt-4o-mini' : null,
  key: budgetKey(scope, window),
});

const usage = (u: Partial<BudgetUsage> = {}): BudgetUsage => ({
  usedTokens: 0,
  usedMicros: 0,
  reservedTokens: 0,
  reservedMicros: 0,
  ...u,
});

const out = (wantTokens: number, minTokens: number, microsPerMillion = 0): Quote['output'] => ({
  wantTokens,
  minTokens,
  microsPerMillion,
});

type Row = { budget: Budget; usage: BudgetUsage };
const row = (spec: BudgetSpec, u: Partial<BudgetUsage> = {}): Row => ({ budget: budget(spec), usage: usage(u) });

describe('costMicros: rounded up so a budget is never under-charged', () => {
  it.each<[number, number, number]>([
    [0, 10_000_000, 0],
    [1_000, 0, 0],
    [1, 1, 1], // 0.000001 micro → 1
    [1, 999_999, 1],
    [1, 1_000_000, 1],
    [1, 1_000_001, 2],
    [3, 1_500_000, 5], // 4.5 → 5
    [1_000, 2_500_000, 2_500],
    [1_000_000, 1_000_000, 1_000_000],
    [333, 3_000_000, 999],
    [334, 3_000_000, 1_002],
    [1_000_001, 15_000_000, 15_000_015],
  ])('%s tokens at %s µ$/M → %s µ$', (tokens, price, expected) => {
    expect(costMicros(tokens, price)).toBe(expected);
  });
});

describe('outputRoom', () => {
  it.each<[string, BudgetSpec, Partial<BudgetUsage>, Quote, number]>([
    ['no limits', {}, {}, { tokens: 100, micros: 0 }, Infinity],
    ['tokens: limit − used − reserved − fixed', { limitTokens: 1_000 }, { usedTokens: 300, reservedTokens: 200 }, { tokens: 100, micros: 0 }, 400],
    ['tokens: exactly full after the fixed part', { limitTokens: 1_000 }, { usedTokens: 900 }, { tokens: 100, micros: 0 }, 0],
    ['tokens: fixed part does not fit → negative', { limitTokens: 1_000 }, { usedTokens: 950 }, { tokens: 100, micros: 0 }, -50],
    ['tokens: already over → negative', { limitTokens: 1_000 }, { usedTokens: 1_200 }, { tokens: 0, micros: 0 }, -200],
    [
      'usd: room by output price, floored',
      { limitMicros: 1_000_000 },
      { usedMicros: 400_000, reservedMicros: 100_000 },
      { tokens: 0, micros: 0, output: out(1_000_000, 1, 3_000_000) },
      166_666, // 500 000 µ$ at 3 µ$/token = 166 666.67
    ],
    [
      'usd: fixed micros count against the room',
      { limitMicros: 1_000_000 },
      { usedMicros: 400_000 },
      { tokens: 0, micros: 100_000, output: out(1_000_000, 1, 10_000_000) },
      50_000,
    ],
    [
      'usd: unpriced output is unlimited by dollars',
      { limitMicros: 1_000_000 },
      { usedMicros: 999_999 },
      { tokens: 0, micros: 1, output: out(1_000, 1, 0) },
      Infinity,
    ],
    ['usd: no output allowance → price 0 → unlimited', { limitMicros: 1_000 }, { usedMicros: 10 }, { tokens: 0, micros: 10 }, Infinity],
    ['usd: exactly no room left', { limitMicros: 1_000 }, { usedMicros: 1_000 }, { tokens: 0, micros: 0, output: out(10, 1, 1_000_000) }, 0],
    ['usd: fixed part does not fit → -1', { limitMicros: 1_000 }, { usedMicros: 900 }, { tokens: 0, micros: 101, output: out(10, 0, 0) }, -1],
    [
      'both units: the tighter one wins (tokens)',
      { limitTokens: 1_000, limitMicros: 1_000_000 },
      { usedTokens: 900 },
      { tokens: 0, micros: 0, output: out(1_000, 1, 1_000_000) },
      100,
    ],
    [
      'both units: the tighter one wins (usd)',
      { limitTokens: 1_000, limitMicros: 50 },
      {},
      { tokens: 0, micros: 0, output: out(1_000, 1, 1_000_000) },
      50,
    ],
    [
      'both units: dollars overdrawn, tokens fine → -1',
      { limitTokens: 1_000, limitMicros: 50 },
      { usedMicros: 60 },
      { tokens: 0, micros: 0 },
      -1,
    ],
    ['alert-only never constrains', { limitTokens: 10, limitMicros: 10, onLimit: 'alert-only' }, { usedTokens: 1_000, usedMicros: 1_000 }, { tokens: 100, micros: 100 }, Infinity],
    ['downgrade constrains like reject', { limitTokens: 1_000, onLimit: 'downgrade' }, { usedTokens: 400 }, { tokens: 100, micros: 0 }, 500],
  ])('%s', (_label, spec, u, quote, expected) => {
    expect(outputRoom(budget(spec), usage(u), quote)).toBe(expected);
  });
});

describe('admit: outputRoom', () => {
  it.each<[string, Row[], Quote, number]>([
    ['no budgets: unlimited', [], { tokens: 10, micros: 0, output: out(100, 1, 0) }, Infinity],
    ['the tightest budget, before clamping to want', [row({ limitTokens: 5_000 }, { usedTokens: 1_000 }), row({ limitTokens: 2_000 }, {})], { tokens: 100, micros: 0, output: out(50, 1, 0) }, 1_900],
    ['alert-only budgets do not count', [row({ limitTokens: 10, onLimit: 'alert-only' }, { usedTokens: 9 })], { tokens: 0, micros: 0, output: out(50, 1, 0) }, Infinity],
  ])('%s', (_label, rows, quote, expected) => {
    const decision = admit(rows, quote);
    expect(decision.ok && decision.outputRoom).toBe(expected);
  });
});

describe('admit', () => {
  // outputRoom is checked on its own below; these rows are about the grant.
  it.each<[string, Row[], Quote, Admission extends infer A ? (A extends { ok: true } ? Omit<A, 'outputRoom'> : A) : never]>([
    // ─ no budgets ─
    ['no budgets → full want', [], { tokens: 120, micros: 36, output: out(4_000, 1, 10_000_000) }, { ok: true, tokens: 4_120, micros: 40_036, outputTokens: 4_000 }],
    ['no budgets, no output allowance', [], { tokens: 50, micros: 5 }, { ok: true, tokens: 50, micros: 5, outputTokens: 0 }],

    // ─ fits exactly / one short ─
    [
      'fits exactly: room == want',
      [row({ limitTokens: 1_000 }, { usedTokens: 600, reservedTokens: 100 })],
      { tokens: 200, micros: 0, output: out(100, 1) },
      { ok: true, tokens: 300, micros: 0, outputTokens: 100 },
    ],
    [
      'fits exactly: room == min',
      [row({ limitTokens: 1_000 }, { usedTokens: 600, reservedTokens: 100 })],
      { tokens: 200, micros: 0, output: out(500, 100) },
      { ok: true, tokens: 300, micros: 0, outputTokens: 100 },
    ],
    [
      'one token short of min → refused',
      [row({ limitTokens: 1_000 }, { usedTokens: 600, reservedTokens: 100 })],
      { tokens: 200, micros: 0, output: out(500, 101) },
      { ok: false, blockingIndex: 0 },
    ],
    [
      'prompt plus one output token: fits with exactly 1 left',
      [row({ limitTokens: 1_000 }, { usedTokens: 899 })],
      { tokens: 100, micros: 0, output: out(4_096, 1) },
      { ok: true, tokens: 101, micros: 0, outputTokens: 1 },
    ],
    [
      'prompt plus one output token: nothing left for output → refused',
      [row({ limitTokens: 1_000 }, { usedTokens: 900 })],
      { tokens: 100, micros: 0, output: out(4_096, 1) },
      { ok: false, blockingIndex: 0 },
    ],
    [
      'one token short: the tightest budget blocks',
      [
        row({ limitTokens: 1_000_000 }, { usedTokens: 10 }), // room 999 890
        row({ limitTokens: 1_000 }, { usedTokens: 801 }), // room 99: tightest, one short of 100
        row({ limitTokens: 10_000 }, { usedTokens: 9_400 }), // room 500
      ],
      { tokens: 100, micros: 0, output: out(1_000, 100) },
      { ok: false, blockingIndex: 1 },
    ],
    [
      'blocked by the tightest, not the first one too small',
      [
        row({ limitTokens: 1_000 }, { usedTokens: 995 }), // room -95
        row({ limitTokens: 1_000 }, { usedTokens: 1_000 }), // room -100: tightest
        row({ limitTokens: 1_000 }, { usedTokens: 950 }), // room -50
      ],
      { tokens: 100, micros: 0, output: out(100, 1) },
      { ok: false, blockingIndex: 1 },
    ],
    [
      'equally tight → the earlier one blocks',
      [row({ limitTokens: 1_000_000 }), row({ limitTokens: 100 }, { usedTokens: 50 }), row({ limitTokens: 200 }, { usedTokens: 150 })],
      { tokens: 50, micros: 0, output: out(10, 1) },
      { ok: false, blockingIndex: 1 },
    ],

    // ─ clamping to the tightest budget ─
    [
      'output clamped to the tightest budget',
      [
        row({ limitTokens: 100_000 }, { usedTokens: 50_000 }), // room 49 800
        row({ limitTokens: 10_000 }, { usedTokens: 9_000, reservedTokens: 500 }), // room 300: tightest
        row({ limitTokens: 5_000 }, { usedTokens: 4_000 }), // room 800
      ],
      { tokens: 200, micros: 0, output: out(4_096, 1) },
      { ok: true, tokens: 500, micros: 0, outputTokens: 300 },
    ],
    [
      'want below every room → full want',
      [row({ limitTokens: 100_000 }), row({ limitTokens: 10_000 }, { usedTokens: 5_000 })],
      { tokens: 200, micros: 0, output: out(1_000, 1) },
      { ok: true, tokens: 1_200, micros: 0, outputTokens: 1_000 },
    ],
    [
      'clamped output is charged at the output price, rounded up',
      [row({ limitTokens: 1_000 }, { usedTokens: 897 })],
      { tokens: 100, micros: 30, output: out(1_000, 1, 1_500_000) },
      { ok: true, tokens: 103, micros: 35, outputTokens: 3 }, // 3 × 1.5 µ$ = 4.5 → 5
    ],

    // ─ dollar budgets ─
    [
      'dollar budget clamps output by price (floor)',
      [row({ limitMicros: 1_000_000 }, { usedMicros: 400_000, reservedMicros: 100_000 })],
      { tokens: 10, micros: 0, output: out(1_000_000, 1, 3_000_000) },
      // 500 000 µ$ / 3 µ$ per token = 166 666.67 → 166 666 tokens, costing 499 998 µ$
      { ok: true, tokens: 166_676, micros: 499_998, outputTokens: 166_666 },
    ],
    [
      'dollar budget with a non-integer fit: cost rounded up still within the room',
      [row({ limitMicros: 1_000 }, { usedMicros: 0 })],
      { tokens: 0, micros: 0, output: out(1_000_000, 1, 7_000_000) },
      // 1 000 µ$ / 7 µ$ per token = 142.86 → 142 tokens = 994 µ$
      { ok: true, tokens: 142, micros: 994, outputTokens: 142 },
    ],
    [
      'dollar budget tighter than a token budget',
      [row({ limitTokens: 1_000_000 }), row({ limitMicros: 2_000_000 }, { usedMicros: 1_990_000 })],
      { tokens: 500, micros: 1_000, output: out(8_000, 1, 10_000_000) },
      // (10 000 − 1 000) µ$ / 10 µ$ per token = 900 tokens
      { ok: true, tokens: 1_400, micros: 10_000, outputTokens: 900 },
    ],
    [
      'dollar budget: fixed micros do not fit → refused',
      [row({ limitTokens: 1_000_000 }), row({ limitMicros: 1_000 }, { usedMicros: 990 })],
      { tokens: 10, micros: 11, output: out(100, 1, 1_000_000) },
      { ok: false, blockingIndex: 1 },
    ],
    [
      'dollar budget: exactly the fixed micros left, no output affordable → refused',
      [row({ limitMicros: 1_000 }, { usedMicros: 990 })],
      { tokens: 10, micros: 10, output: out(100, 1, 1_000_000) },
      { ok: false, blockingIndex: 0 },
    ],

    // ─ minTokens ─
    [
      'minTokens above room → refused',
      [row({ limitTokens: 1_000 }, { usedTokens: 500 })],
      { tokens: 400, micros: 0, output: out(4_096, 101) },
      { ok: false, blockingIndex: 0 },
    ],
    [
      'minTokens 0 with zero room → admitted with no output',
      [row({ limitTokens: 1_000 }, { usedTokens: 600 })],
      { tokens: 400, micros: 0, output: out(4_096, 0) },
      { ok: true, tokens: 400, micros: 0, outputTokens: 0 },
    ],

    // ─ alert-only ─
    [
      'alert-only budget far over its limit never constrains',
      [row({ limitTokens: 100, limitMicros: 100, onLimit: 'alert-only' }, { usedTokens: 10_000, usedMicros: 10_000 })],
      { tokens: 500, micros: 50, output: out(2_000, 1, 1_000_000) },
      { ok: true, tokens: 2_500, micros: 2_050, outputTokens: 2_000 },
    ],
    [
      'alert-only is ignored; the reject budget clamps',
      [
        row({ limitTokens: 10, onLimit: 'alert-only' }, { usedTokens: 9 }),
        row({ limitTokens: 1_000 }, { usedTokens: 700 }),
      ],
      { tokens: 100, micros: 0, output: out(500, 1) },
      { ok: true, tokens: 300, micros: 0, outputTokens: 200 },
    ],
    [
      'alert-only is never the blocking index',
      [row({ limitTokens: 10, onLimit: 'alert-only' }, { usedTokens: 5_000 }), row({ limitTokens: 100 }, { usedTokens: 100 })],
      { tokens: 1, micros: 0 },
      { ok: false, blockingIndex: 1 },
    ],

    // ─ negative fixed room ─
    [
      'negative fixed room → refused even when min is 0',
      [row({ limitTokens: 1_000 }, { usedTokens: 950 })],
      { tokens: 100, micros: 0, output: out(100, 0) },
      { ok: false, blockingIndex: 0 },
    ],
    [
      'negative fixed room without an output allowance → refused',
      [row({ limitTokens: 1_000 }, { usedTokens: 500, reservedTokens: 450 })],
      { tokens: 51, micros: 0 },
      { ok: false, blockingIndex: 0 },
    ],
    [
      'fixed part exactly fits without an output allowance → admitted',
      [row({ limitTokens: 1_000 }, { usedTokens: 500, reservedTokens: 450 })],
      { tokens: 50, micros: 7 },
      { ok: true, tokens: 50, micros: 7, outputTokens: 0 },
    ],
    [
      'negative dollar room without an output allowance → refused',
      [row({ limitTokens: 1_000 }), row({ limitMicros: 1_000 }, { usedMicros: 1_001 })],
      { tokens: 1, micros: 0 },
      { ok: false, blockingIndex: 1 },
    ],
  ])('%s', (_label, rows, quote, expected) => {
    const decision = admit(rows, quote);
    if (decision.ok) {
      const { outputRoom: room, ...grant } = decision;
      expect(grant).toEqual(expected);
      expect(room).toBeGreaterThanOrEqual(grant.outputTokens);
    } else {
      expect(decision).toEqual(expected);
    }
  });

  it.each<[number, number, number]>([
    [1_000, 7_000_000, 0],
    [1_000, 3_000_000, 1],
    [999_999, 1_234_567, 12],
    [5, 999_999, 0],
  ])('a grant never costs more than the dollar room left (%s µ$ at %s µ$/M, %s already used)', (limitMicros, price, used) => {
    const decision = admit([row({ limitMicros }, { usedMicros: used })], { tokens: 0, micros: 0, output: out(1e12, 0, price) });
    expect(decision.ok).toBe(true);
    if (!decision.ok) return;
    expect(decision.outputTokens).toBe(Math.floor(((limitMicros - used) * 1_000_000) / price));
    expect(decision.micros).toBeLessThanOrEqual(limitMicros - used);
    // one more token would not have fit
    expect(costMicros(decision.outputTokens + 1, price)).toBeGreaterThan(limitMicros - used);
  });
});
