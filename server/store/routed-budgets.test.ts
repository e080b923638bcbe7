import { describe, expect, it } from 'vitest';
import { T0, userWithKey } from '../testing/harness.js';
import { TTL, usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';
import type { RequestSubject, Route } from '../quota/scope.js';
import type { Store } from './types.js';

const DAY = 86_400_000;
const month = { kind: 'month', timeZone: 'UTC' } as const;

/** Reserves and settles one request of `tokens` (all output) on `route`. */
async function spendOn(store: Store, subject: RequestSubject, id: string, tokens: number, route: Route, now = T0) {
  const held = await store.reserve({ holdId: id, subject, quote: { tokens, micros: 0 }, now, ttlMs: TTL, route });
  if (!held.ok) return held;
  await store.settle({ holdId: id, subject, usage: { ...usage(0, tokens), model: route.model, upstream: route.upstream }, now });
  return held;
}

const gpt5 = (upstream: string | null = null): Route => ({ model: 'gpt-5', upstream });
const mini = (upstream: string | null = null): Route => ({ model: 'gpt-4o-mini', upstream });

describe.each(storeKinds())('$name store: budgets of some models, and of upstreams', ({ open }) => {
  it('counts and limits a budget naming models on those models only, inside the overall budget', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const user = { kind: 'user', id: 'alice' } as const;
    await store.putBudget({ scope: user, window: month, limitTokens: 1_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null }, T0);
    const { budget: family } = await store.putBudget(
      { scope: user, window: month, limitTokens: 300, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null, models: ['gpt-5*', 'o3*'] },
      T0,
    );
    expect(family.key).toBe('user:alice|month models=gpt-5*,o3*');

    expect((await spendOn(store, subject, 'a', 250, gpt5())).ok).toBe(true);
    // 100 more of gpt-5 would pass the family's 300; gpt-4o-mini is not of the family.
    const refused = await spendOn(store, subject, 'b', 100, gpt5());
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.blocking.budget.id).toBe(family.id);
    expect((await spendOn(store, subject, 'c', 600, mini())).ok).toBe(true);
    // The overall budget counted both models: 850 of 1,000.
    const states = await store.budgetStates([{ kind: 'user', id: 'alice' }], T0 + 1);
    expect(states.map((s) => [s.budget.models ?? null, s.usage.usedTokens])).toEqual([
      [null, 850],
      [['gpt-5*', 'o3*'], 250],
    ]);
    // An o3 request is of the family too.
    expect((await spendOn(store, subject, 'd', 60, { model: 'o3-mini', upstream: null })).ok).toBe(false);
  });

  it('counts a budget naming models from the ledger when it is created after the entries', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    await spendOn(store, subject, 'a', 40, gpt5());
    await spendOn(store, subject, 'b', 70, mini());
    await spendOn(store, subject, 'c', 5, { model: 'gpt-5-mini', upstream: null });
    await store.putBudget(
      { scope: { kind: 'user', id: 'alice' }, window: month, limitTokens: 100, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null, models: ['gpt-5*'] },
      T0 + 1,
    );
    const [state] = await store.budgetStates([{ kind: 'user', id: 'alice' }], T0 + 2);
    expect(state?.usage.usedTokens).toBe(45);
  });

  it('keeps one budget per scope, period and set of models: the same set replaces, another set adds', async () => {
    const store = await open();
    await userWithKey(store, 'alice');
    const put = (models: string[] | null, limitTokens: number) =>
      store.putBudget({ scope: { kind: 'user', id: 'alice' }, window: month, limitTokens, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null, models }, T0);
    await put(null, 1_000);
    const first = await put(['gpt-5*'], 100);
    expect(first.replaced).toBeNull();
    const again = await put(['gpt-5*'], 200);
    expect(again.replaced?.limitTokens).toBe(100);
    expect(again.budget.id).toBe(first.budget.id);
    await put(['o3*'], 50);
    expect((await store.listBudgets()).map((b) => [b.models ?? null, b.limitTokens])).toEqual([
      [null, 1_000],
      [['gpt-5*'], 200],
      [['o3*'], 50],
    ]);
  });

  it('keeps fallback rules with the budget', async () => {
    const store = await open();
    await userWithKey(store, 'alice');
    const fallback = [
      { at: 90, to: 'gpt-5-mini' },
      { at: 100, to: 'qwen3:8b' },
    ];
    const { budget } = await store.putBudget(
      { scope: { kind: 'user', id: 'alice' }, window: month, limitTokens: 1_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null, fallback },
      T0,
    );
    expect(budget.fallback).toEqual(fallback);
    expect((await store.listBudgets())[0]?.fallback).toEqual(fallback);
  });

  it("limits an upstream's budget to what that upstream served, for every user", async () => {
    const store = await open();
    const alice = (await userWithKey(store, 'alice')).subject;
    const bob = (await userWithKey(store, 'bob')).subject;
    const { budget } = await store.putBudget(
      { scope: { kind: 'upstream', id: 'plan-a' }, window: { kind: 'rolling', hours: 1 }, limitTokens: 1_200, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
      T0,
    );
    expect((await spendOn(store, alice, 'a', 700, mini('plan-a'))).ok).toBe(true);
    // Bob's request would pass plan A's 1,200 an hour; plan B has no budget.
    const refused = await spendOn(store, bob, 'b', 600, mini('plan-a'));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.blocking.budget.id).toBe(budget.id);
    expect((await spendOn(store, bob, 'c', 600, mini('plan-b'))).ok).toBe(true);
    // A request with no upstream named is not bound by any upstream's budget.
    expect((await spendOn(store, bob, 'd', 600, mini())).ok).toBe(true);

    const [state] = await store.budgetStates([{ kind: 'upstream', id: 'plan-a' }], T0 + 1);
    expect(state?.usage.usedTokens).toBe(700);
    expect((await store.recentEntries(3)).map((e) => [e.requestId, e.upstream])).toEqual([
      ['d', null],
      ['c', 'plan-b'],
      ['a', 'plan-a'],
    ]);
    // An hour later the rolling window has moved past it.
    expect((await spendOn(store, bob, 'e', 1_100, mini('plan-a'), T0 + DAY)).ok).toBe(true);
  });

  it("counts an upstream's budget from the ledger and its rollup, and grows a lease against it", async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    await spendOn(store, subject, 'old', 500, mini('plan-a'), T0 - 10 * DAY);
    await spendOn(store, subject, 'new', 300, mini('plan-a'), T0 - DAY);
    expect(await store.rollUpLedger(T0 - 5 * DAY)).toBe(1);
    await store.putBudget(
      { scope: { kind: 'upstream', id: 'plan-a' }, window: { kind: 'total' }, limitTokens: 1_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
      T0,
    );
    const [state] = await store.budgetStates([{ kind: 'upstream', id: 'plan-a' }], T0);
    expect(state?.usage.usedTokens).toBe(800);

    const held = await store.reserve({ holdId: 'live', subject, quote: { tokens: 150, micros: 0 }, now: T0, ttlMs: TTL, route: mini('plan-a') });
    expect(held.ok).toBe(true);
    expect(await store.extend('live', { tokens: 40, micros: 0 }, T0 + 1, TTL)).toMatchObject({ ok: true });
    // 800 used + 190 held: 20 more would pass the plan's 1,000.
    const grown = await store.extend('live', { tokens: 20, micros: 0 }, T0 + 2, TTL);
    expect(grown).toMatchObject({ ok: false, reason: 'exceeded' });
    if (!grown.ok && grown.reason === 'exceeded') expect(grown.blocking.budget.scope).toEqual({ kind: 'upstream', id: 'plan-a' });
  });
});
