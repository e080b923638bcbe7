import { describe, expect, it } from 'vitest';
import { T0, userWithKey } from '../testing/harness.js';
import { monthlyUserTokens, userScopes, usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';
import type { Usage } from './types.js';

const DAY = 86_400_000;

/** A response-cache hit charged a quarter of a 1,000 + 200 token, 8,000 micro-dollar answer. */
const hitUsage: Usage = {
  ...usage(250, 50, 2_000),
  source: 'cache',
  savedTokens: 900,
  savedMicros: 6_000,
};

describe.each(storeKinds())('$name store: response-cache hits in the ledger', ({ open }) => {
  it('keeps source cache and the saved counts on the entry, the duplicate settle and the entries read back; counts only the charge', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const { subject } = await userWithKey(store, 'alice');
    // A hit charged something is admitted against the budgets first; one charged nothing has no hold.
    await store.reserve({ holdId: 'hit-1', subject, quote: { tokens: 300, micros: 2_000 }, now: T0, ttlMs: 60_000 });
    const settled = await store.settle({ holdId: 'hit-1', subject, usage: hitUsage, now: T0 });
    expect(settled.entry).toMatchObject({ source: 'cache', outcome: 'ok', inputTokens: 250, outputTokens: 50, costMicros: 2_000, savedTokens: 900, savedMicros: 6_000 });
    expect(await store.settle({ holdId: 'hit-1', subject, usage: usage(1, 1), now: T0 + 1 })).toEqual({ entry: settled.entry, duplicate: true });
    expect(await store.recentEntries(1)).toEqual([settled.entry]);

    const free = await store.settle({ holdId: 'hit-free', subject, usage: { ...hitUsage, ...usage(0, 0), source: 'cache', savedTokens: 1_200, savedMicros: 8_000 }, now: T0 + 2 });
    expect(free.entry).toMatchObject({ source: 'cache', inputTokens: 0, outputTokens: 0, savedTokens: 1_200 });
    expect(await store.listHolds()).toEqual([]);
    // The budget counts what was charged, never what was saved.
    const [state] = await store.budgetStates(userScopes(subject), T0 + 3);
    expect(state?.usage).toMatchObject({ usedTokens: 300, reservedTokens: 0 });
  });

  it('records 0 saved for an entry that names none', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const { entry } = await store.settle({ holdId: 'plain', subject, usage: usage(100, 10), now: T0 });
    expect(entry).toMatchObject({ savedTokens: 0, savedMicros: 0 });
    expect((await store.recentEntries(1))[0]).toMatchObject({ savedTokens: 0, savedMicros: 0 });
  });

  it('counts hits and sums the savings in usage reports, before and after retention rolls the entries up', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    await store.settle({ holdId: 'a', subject, usage: usage(1_000, 200, 8_000), now: T0 });
    await store.settle({ holdId: 'b', subject, usage: hitUsage, now: T0 + 60_000 });
    await store.settle({ holdId: 'c', subject, usage: hitUsage, now: T0 + 120_000 });
    const report = () => store.usageReport({ groupBy: ['user'], from: T0 - DAY, to: T0 + DAY, timeZone: 'UTC' });

    const before = await report();
    expect(before.map((r) => [r.group, r.requests, r.totalTokens, r.costMicros, r.cacheHits, r.savedTokens, r.savedMicros])).toEqual([
      ['alice', 3, 1_800, 12_000, 2, 1_800, 12_000],
    ]);
    expect(await store.rollUpLedger(T0 + DAY)).toBe(3);
    expect(await store.recentEntries(5)).toEqual([]);
    expect(await report()).toEqual(before);
  });
});
