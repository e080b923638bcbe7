import { describe, expect, it } from 'vitest';
import { T0, userWithKey } from '../../testing/harness.js';
import { usage } from '../testing/store-fixtures.js';
import { postgresTestSchema } from '../testing/store-kinds.js';

const db = postgresTestSchema();
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('settles whose budgets another instance changed', () => {
  it('are settled again on the new budgets, even when every group commit under way has one', async () => {
    const a = await db.open();
    const b = await db.open();
    const { subject } = await userWithKey(a, 'alice');
    const budget = { scope: { kind: 'user' as const, id: 'alice' }, window: { kind: 'month' as const, timeZone: 'UTC' }, limitMicros: null, thresholds: [], onLimit: 'reject' as const, downgradeTo: null };
    await a.putBudget({ ...budget, limitTokens: 1_000 }, T0);
    for (const holdId of ['h1', 'h2']) expect((await a.reserve({ holdId, subject, quote: { tokens: 10, micros: 0 }, now: T0, ttlMs: 60_000 })).ok).toBe(true);
    // Instance a still holds the budgets it resolved: its next calls find them stale.
    await b.putBudget({ ...budget, limitTokens: 2_000 }, T0);
    // Two group commits at once (one per turn), each with a stale settle.
    const first = a.settle({ holdId: 'h1', subject, usage: usage(10, 0), now: T0 });
    await nextTurn();
    const second = a.settle({ holdId: 'h2', subject, usage: usage(10, 0), now: T0 });
    const settled = await Promise.race([
      Promise.all([first, second]),
      new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 10_000).unref()),
    ]);
    expect(settled).not.toBe('stuck');
    const states = await a.budgetStates([{ kind: 'user', id: 'alice' }], T0);
    expect(states.map((s) => [s.budget.limitTokens, s.usage.usedTokens, s.usage.reservedTokens])).toEqual([[2_000, 20, 0]]);
  });
});
