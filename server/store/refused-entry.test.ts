import { describe, expect, it } from 'vitest';
import { monthlyUserTokens, usage, userScopes } from './testing/store-fixtures.js';
import { T0, userWithKey } from '../testing/harness.js';
import { storeKinds } from './testing/store-kinds.js';

describe.each(storeKinds())('$name store: a refusal answered as a message', ({ open }) => {
  it('is recorded without a hold, charges nothing and appears in reports as a request', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    const { entry, duplicate } = await store.settle({ holdId: 'req-refused', subject, usage: { ...usage(0, 0), outcome: 'refused' }, now: T0 });
    expect(duplicate).toBe(false);
    expect(entry).toMatchObject({ requestId: 'req-refused', userId: 'alice', outcome: 'refused', inputTokens: 0, outputTokens: 0, costMicros: 0, overrunTokens: 0 });
    expect((await store.recentEntries(5)).map((e) => e.outcome)).toEqual(['refused']);
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage).toEqual({ usedTokens: 0, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
    const [row] = await store.usageReport({ groupBy: 'user', from: 0, to: T0 + 1, timeZone: 'UTC' });
    expect(row).toMatchObject({ group: 'alice', requests: 1, totalTokens: 0 });
  });
});
