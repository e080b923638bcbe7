import { describe, expect, it } from 'vitest';
import { T0, userWithKey } from '../testing/harness.js';
import { TTL, usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';
import type { Budget } from '../quota/budgets.js';
import type { GrantInput, Store } from './types.js';

const DAY = 86_400_000;
/** 2026-11-22T12:00Z is in the day [T0 - 12 h, T0 + 12 h) in UTC. */
const DAY_START = T0 - DAY / 2;

async function dayBudget(store: Store, limitTokens: number): Promise<Budget> {
  const { budget } = await store.putBudget(
    { scope: { kind: 'user', id: 'alice' }, window: { kind: 'day', timeZone: 'UTC' }, limitTokens, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
    T0,
  );
  return budget;
}

const grantOn = (budget: Budget, tokens: number, over: Partial<GrantInput> = {}): GrantInput => ({
  budgetKey: budget.key,
  scope: budget.scope,
  tokens,
  micros: 0,
  startsAt: T0,
  endsAt: DAY_START + DAY,
  decidedBy: 'admin',
  requestId: null,
  reason: 'a deadline',
  ...over,
});

describe.each(storeKinds())('$name store: grants', ({ open }) => {
  it('raises the limit admission checks against, for the window it was granted in only', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const budget = await dayBudget(store, 1_000);
    const take = (id: string, tokens: number, now: number) => store.reserve({ holdId: id, subject, quote: { tokens, micros: 0 }, now, ttlMs: TTL });

    const first = await take('a', 900, T0);
    expect(first.ok).toBe(true);
    await store.settle({ holdId: 'a', subject, usage: usage(0, 900), now: T0 });
    expect((await take('b', 300, T0)).ok).toBe(false);

    const grant = await store.createGrant(grantOn(budget, 500), T0);
    expect(grant).toMatchObject({ budgetKey: budget.key, tokens: 500, decidedBy: 'admin', reason: 'a deadline' });
    const held = await take('c', 300, T0 + 1);
    expect(held.ok).toBe(true);
    const [state] = await store.budgetStates([{ kind: 'user', id: 'alice' }], T0 + 2);
    expect(state?.budget.limitTokens).toBe(1_500);
    expect(state?.grants?.map((g) => g.id)).toEqual([grant.id]);
    await store.release('c');

    // The next day: the limit is the budget's own again.
    const [tomorrow] = await store.budgetStates([{ kind: 'user', id: 'alice' }], DAY_START + DAY);
    expect(tomorrow?.budget.limitTokens).toBe(1_000);
    expect(tomorrow?.grants).toBeUndefined();
    expect((await take('d', 1_001, DAY_START + DAY)).ok).toBe(false);
    expect((await take('e', 1_000, DAY_START + DAY)).ok).toBe(true);
  });

  it('adds a dollar grant to a dollar limit only, and lists grants by scope and by instant', async () => {
    const store = await open();
    await userWithKey(store, 'alice');
    const tokens = await dayBudget(store, 1_000);
    await store.createGrant(grantOn(tokens, 0, { micros: 5_000_000 }), T0);
    const [state] = await store.budgetStates([{ kind: 'user', id: 'alice' }], T0);
    // A token budget gains no dollar limit from a dollar grant.
    expect([state?.budget.limitTokens, state?.budget.limitMicros]).toEqual([1_000, null]);

    await store.createGrant(grantOn(tokens, 100, { startsAt: T0 + 10, endsAt: T0 + 20 }), T0 + 10);
    expect((await store.listGrants({ scope: 'user:alice' })).length).toBe(2);
    expect((await store.listGrants({ scope: 'user:bob' })).length).toBe(0);
    expect((await store.listGrants({ activeAt: T0 + 15 })).map((g) => g.tokens).sort()).toEqual([0, 100]);
    expect((await store.listGrants({ activeAt: T0 + 25 })).map((g) => g.tokens)).toEqual([0]);
  });

  it('applies a grant made by one instance in the next admission of another', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const budget = await dayBudget(store, 100);
    // A second handle on the same data: on PostgreSQL another instance; on SQLite the same store.
    expect((await store.reserve({ holdId: 'x', subject, quote: { tokens: 150, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(false);
    await store.createGrant(grantOn(budget, 100), T0);
    expect((await store.reserve({ holdId: 'y', subject, quote: { tokens: 150, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(true);
  });
});
