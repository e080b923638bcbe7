import { describe, expect, it } from 'vitest';
import type { Store } from './types.js';
import { monthlyTokens, TTL, usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';
import { T0, userWithKey } from '../testing/harness.js';

// What a request sets aside is set aside on each of its budgets, and given back to each when the
// request ends, however it ends. A budget created while the request runs (a stream's lease) joins
// it with the extensions from then on, not with what was reserved before it existed.

const kinds = storeKinds();

/** Everyone's tokens a month; alice's own day budget is created while her request runs. */
const GLOBAL = monthlyTokens('global', 1_000_000);
const HOUR = 3_600_000;

/** [reserved tokens of the global budget, of alice's day budget] */
async function reserved(store: Store): Promise<number[]> {
  const states = await store.budgetStates([{ kind: 'user', id: 'alice' }, { kind: 'global' }], T0 + 2);
  return ['global', 'user'].map((kind) => states.find((s) => s.budget.scope.kind === kind)?.usage.reservedTokens ?? -1);
}

/** alice's request: 100 tokens reserved, her day budget created, then 50 and 30 more leased. */
async function streamWithNewBudget(store: Store) {
  const { subject } = await userWithKey(store, 'alice');
  expect((await store.reserve({ holdId: 'stream', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(true);
  await store.putBudget(
    { scope: { kind: 'user', id: 'alice' }, window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 10_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
    T0,
  );
  expect((await store.extend('stream', { tokens: 50, micros: 0 }, T0 + 1, TTL)).ok).toBe(true);
  expect((await store.extend('stream', { tokens: 30, micros: 0 }, T0 + 2, TTL)).ok).toBe(true);
  expect(await reserved(store)).toEqual([180, 80]);
  return subject;
}

describe.each(kinds)('$name store: what a request sets aside on each budget', ({ open }) => {
  it('a budget created while it runs holds its extensions only, and both are given back by its settle', async () => {
    const store = await open({ defaultBudgets: [GLOBAL] });
    const subject = await streamWithNewBudget(store);
    await store.settle({ holdId: 'stream', subject, usage: usage(20, 150), now: T0 + 2 });
    expect(await reserved(store)).toEqual([0, 0]);
    const states = await store.budgetStates([{ kind: 'user', id: 'alice' }, { kind: 'global' }], T0 + 2);
    expect(states.map((s) => s.usage.usedTokens)).toEqual([170, 170]);
  });

  it('and by its release', async () => {
    const store = await open({ defaultBudgets: [GLOBAL] });
    await streamWithNewBudget(store);
    expect(await store.release('stream')).toBe(true);
    expect(await reserved(store)).toEqual([0, 0]);
  });

  it('and by its expiry, beside a request that goes on', async () => {
    const store = await open({ defaultBudgets: [GLOBAL] });
    const subject = await streamWithNewBudget(store);
    expect((await store.reserve({ holdId: 'later', subject, quote: { tokens: 7, micros: 0 }, now: T0 + HOUR, ttlMs: TTL })).ok).toBe(true);
    expect(await store.expireHolds(T0 + 2 + TTL)).toBe(1);
    expect(await reserved(store)).toEqual([7, 7]);
    expect((await store.listHolds()).map((h) => h.id)).toEqual(['later']);
  });
});
