import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { budgetKey, defaultBudgetsFor, resolveBudgets, type Budget } from './budgets.js';
import type { Scope } from './scope.js';
import type { WindowSpec } from './window.js';

const THRESHOLDS = [50, 80, 90, 95, 100];

const MONTH: WindowSpec = { kind: 'month', timeZone: 'UTC' };
const DAY: WindowSpec = { kind: 'day', timeZone: 'Asia/Shanghai' };
const ROLLING_5H: WindowSpec = { kind: 'rolling', hours: 5 };
const TOTAL: WindowSpec = { kind: 'total' };

const alice: Scope = { kind: 'user', id: 'alice' };
const bob: Scope = { kind: 'user', id: 'bob' };
const key1: Scope = { kind: 'key', id: 'k1' };
const proj: Scope = { kind: 'project', id: 'apollo' };
const global: Scope = { kind: 'global' };

const dflt = (
  scope: DefaultBudget['scope'],
  window: DefaultBudget['window'],
  extra: Partial<Omit<DefaultBudget, 'scope' | 'window'>> = {},
): DefaultBudget => ({
  scope,
  window,
  limitTokens: 1_000_000,
  limitUsd: null,
  onLimit: 'reject',
  ...extra,
});

const stored = (id: string, scope: Scope, window: WindowSpec, limitTokens = 5_000): Budget => ({
  id,
  source: 'admin',
  scope,
  window,
  limitTokens,
  limitMicros: null,
  thresholds: [80, 100],
  onLimit: 'reject',
  downgradeTo: null,
  key: budgetKey(scope, window),
});

const DEFAULTS: DefaultBudget[] = [
  dflt('user', MONTH),
  dflt('user', ROLLING_5H, { limitTokens: 50_000 }),
  dflt('project', MONTH, { limitTokens: null, limitUsd: 100 }),
  dflt('global', DAY, { limitTokens: 50_000_000 }),
  dflt('key', TOTAL, { limitTokens: 10_000_000 }),
];

describe('budgetKey', () => {
  it.each<[Scope, WindowSpec, string]>([
    [alice, MONTH, 'user:alice|month'],
    [global, DAY, 'global|day'],
    [key1, ROLLING_5H, 'key:k1|rolling:5h'],
    [proj, TOTAL, 'project:apollo|total'],
  ])('%j + %j → %s', (scope, window, expected) => {
    expect(budgetKey(scope, window)).toBe(expected);
  });
});

describe('defaultBudgetsFor', () => {
  it.each<[string, Scope, string[]]>([
    ['user gets the user defaults in config order', alice, ['config:user:alice|month', 'config:user:alice|rolling:5h']],
    ['another user gets their own copies', bob, ['config:user:bob|month', 'config:user:bob|rolling:5h']],
    ['project gets the project default', proj, ['config:project:apollo|month']],
    ['global gets the global default', global, ['config:global|day']],
    ['key gets the key default', key1, ['config:key:k1|total']],
  ])('%s', (_label, scope, ids) => {
    const budgets = defaultBudgetsFor(scope, DEFAULTS, THRESHOLDS);
    expect(budgets.map((b) => b.id)).toEqual(ids);
    for (const b of budgets) {
      expect(b.scope).toEqual(scope);
      expect(b.source).toBe('config');
      expect(b.id).toBe(`config:${b.key}`);
    }
  });

  it('no defaults of the kind → none', () => {
    expect(defaultBudgetsFor(alice, [dflt('project', MONTH), dflt('global', MONTH)], THRESHOLDS)).toEqual([]);
  });

  it.each<[string, DefaultBudget, Partial<Budget>]>([
    [
      'token limit, inherited thresholds, no downgrade',
      dflt('user', MONTH),
      { limitTokens: 1_000_000, limitMicros: null, thresholds: THRESHOLDS, onLimit: 'reject', downgradeTo: null, window: MONTH },
    ],
    [
      'usd limit converted to micro-dollars',
      dflt('user', MONTH, { limitTokens: null, limitUsd: 12.34 }),
      { limitTokens: null, limitMicros: 12_340_000 },
    ],
    ['both limits', dflt('user', DAY, { limitTokens: 7, limitUsd: 0.5 }), { limitTokens: 7, limitMicros: 500_000, window: DAY }],
    ['own thresholds win', dflt('user', MONTH, { thresholds: [90, 100] }), { thresholds: [90, 100] }],
    [
      'downgrade target kept',
      dflt('user', MONTH, { onLimit: 'downgrade', downgradeTo: 'gpt-4o-mini' }),
      { onLimit: 'downgrade', downgradeTo: 'gpt-4o-mini' },
    ],
    ['alert-only kept', dflt('user', ROLLING_5H, { onLimit: 'alert-only' }), { onLimit: 'alert-only', key: 'user:alice|rolling:5h' }],
  ])('%s', (_label, d, expected) => {
    const [b, ...rest] = defaultBudgetsFor(alice, [d], THRESHOLDS);
    expect(rest).toEqual([]);
    expect(b).toMatchObject(expected);
  });
});

describe('resolveBudgets', () => {
  const requestScopes: Scope[] = [key1, alice, proj, global];

  it.each<[string, Scope[], Budget[], DefaultBudget[], string[]]>([
    ['nothing at all', requestScopes, [], [], []],
    [
      'config defaults apply per scope kind, in scope order',
      requestScopes,
      [],
      DEFAULTS,
      ['config:key:k1|total', 'config:user:alice|month', 'config:user:alice|rolling:5h', 'config:project:apollo|month', 'config:global|day'],
    ],
    [
      'a stored budget of the same scope and period overrides the default',
      requestScopes,
      [stored('s-alice-month', alice, MONTH)],
      DEFAULTS,
      ['config:key:k1|total', 's-alice-month', 'config:user:alice|rolling:5h', 'config:project:apollo|month', 'config:global|day'],
    ],
    [
      'same period in another time zone still overrides (period is the kind)',
      [alice],
      [stored('s-alice-month-ny', alice, { kind: 'month', timeZone: 'America/New_York' })],
      DEFAULTS,
      ['s-alice-month-ny', 'config:user:alice|rolling:5h'],
    ],
    [
      'a stored budget of another period adds to the defaults',
      [alice],
      [stored('s-alice-week', alice, { kind: 'week', timeZone: 'UTC' })],
      DEFAULTS,
      ['s-alice-week', 'config:user:alice|month', 'config:user:alice|rolling:5h'],
    ],
    [
      'another rolling length is another period',
      [alice],
      [stored('s-alice-24h', alice, { kind: 'rolling', hours: 24 })],
      DEFAULTS,
      ['s-alice-24h', 'config:user:alice|month', 'config:user:alice|rolling:5h'],
    ],
    [
      'the same rolling length overrides',
      [alice],
      [stored('s-alice-5h', alice, ROLLING_5H)],
      DEFAULTS,
      ['s-alice-5h', 'config:user:alice|month'],
    ],
    [
      "another user's override leaves this user's default alone",
      [alice],
      [stored('s-bob-month', bob, MONTH)],
      DEFAULTS,
      ['config:user:alice|month', 'config:user:alice|rolling:5h'],
    ],
    [
      'stored budgets of scopes not asked for are left out',
      [global],
      [stored('s-bob-month', bob, MONTH), stored('s-proj-day', proj, DAY)],
      DEFAULTS,
      ['config:global|day'],
    ],
    [
      'overrides of every period: no defaults remain',
      [alice],
      [stored('s-1', alice, ROLLING_5H), stored('s-2', alice, MONTH)],
      DEFAULTS,
      ['s-1', 's-2'],
    ],
    [
      'order follows the given scopes, not the stored order',
      [global, proj, alice, key1],
      [stored('s-key', key1, MONTH), stored('s-user', alice, DAY), stored('s-global', global, MONTH), stored('s-proj', proj, DAY)],
      [],
      ['s-global', 's-proj', 's-user', 's-key'],
    ],
    [
      'within a scope: stored budgets first (in stored order), then remaining defaults',
      [alice, global],
      [stored('s-global-day', global, DAY), stored('s-alice-total', alice, TOTAL), stored('s-alice-day', alice, DAY)],
      DEFAULTS,
      ['s-alice-total', 's-alice-day', 'config:user:alice|month', 'config:user:alice|rolling:5h', 's-global-day'],
    ],
    [
      'two users in one call each get their own defaults',
      [alice, bob],
      [stored('s-bob-month', bob, MONTH)],
      [dflt('user', MONTH)],
      ['config:user:alice|month', 's-bob-month'],
    ],
  ])('%s', (_label, scopes, storedBudgets, defaults, ids) => {
    expect(resolveBudgets(scopes, storedBudgets, defaults, THRESHOLDS).map((b) => b.id)).toEqual(ids);
  });

  it('keeps the stored budget object as is and builds defaults from config', () => {
    const override = stored('s-alice-month', alice, MONTH, 123);
    const result = resolveBudgets([alice], [override], DEFAULTS, THRESHOLDS);
    expect(result[0]).toBe(override);
    expect(result[1]).toEqual({
      id: 'config:user:alice|rolling:5h',
      source: 'config',
      scope: alice,
      window: ROLLING_5H,
      limitTokens: 50_000,
      limitMicros: null,
      thresholds: THRESHOLDS,
      onLimit: 'reject',
      downgradeTo: null,
      key: 'user:alice|rolling:5h',
    });
  });
});
