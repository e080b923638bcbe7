import { describe, expect, it } from 'vitest';
import { T0, userWithKey } from '../../testing/harness.js';
import { TTL, monthlyUserTokens, usage, userScopes } from '../testing/store-fixtures.js';
import { postgresTestSchema } from '../testing/store-kinds.js';

// The batch functions (metering-functions-12.ts; 13 and 14 change what they are given): what they
// do that the store contract suite does not reach, each seen through the store's own calls.
const db = postgresTestSchema();
const quote = { tokens: 100, micros: 0 };

describe('PostgreSQL batches of admissions and settles', () => {
  it('a grant made on another instance counts at this one’s next admission (the scope’s version moved)', async () => {
    const a = await db.open({ defaultBudgets: [monthlyUserTokens(250)] });
    const b = await db.open({ defaultBudgets: [monthlyUserTokens(250)] });
    const { subject } = await userWithKey(a, 'alice');
    // a resolves and caches alice's budgets: two holds fit, a third does not.
    expect((await a.reserve({ holdId: 'h1', subject, quote, now: T0, ttlMs: TTL })).ok).toBe(true);
    expect((await a.reserve({ holdId: 'h2', subject, quote, now: T0, ttlMs: TTL })).ok).toBe(true);
    expect((await a.reserve({ holdId: 'h3', subject, quote, now: T0, ttlMs: TTL })).ok).toBe(false);
    const [state] = await b.budgetStates(userScopes(subject), T0);
    await b.createGrant(
      { budgetKey: state!.budget.key, scope: state!.budget.scope, tokens: 100, micros: 0, startsAt: T0 - 1, endsAt: T0 + TTL, decidedBy: 'admin', requestId: null, reason: null },
      T0,
    );
    const third = await a.reserve({ holdId: 'h3', subject, quote, now: T0, ttlMs: TTL });
    expect(third.ok).toBe(true);
    expect(third.budgets[0]?.budget.limitTokens).toBe(350);
    expect((await a.reserve({ holdId: 'h4', subject, quote, now: T0, ttlMs: TTL })).ok).toBe(false);
  });

  it('a reservation whose hold id is taken fails alone; the others of its batch are admitted once each', async () => {
    const store = await db.open({ defaultBudgets: [monthlyUserTokens(10_000)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'taken', subject, quote, now: T0, ttlMs: TTL });
    // One turn of the event loop: one batch.
    const outcomes = await Promise.allSettled(['first', 'taken', 'second'].map((holdId) => store.reserve({ holdId, subject, quote, now: T0, ttlMs: TTL })));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toContain('hold taken already exists');
    expect((await store.listHolds()).map((h) => h.id).sort()).toEqual(['first', 'second', 'taken']);
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage.reservedTokens).toBe(300);
  });

  it('two settles of one request in a batch, one of them firing an alert: one entry stands, counted once, its alert recorded', async () => {
    const alerts = { channelsFor: () => ['ops'], projection: false };
    const store = await db.open({ defaultBudgets: [monthlyUserTokens(1_000)], alerts });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'r1', subject, quote, now: T0, ttlMs: TTL });
    // 600 tokens cross 50%: that settle is left out of the batch for its alert's transaction, while
    // the other found its entry written by the batch. Whichever is written first stands.
    const [first, second] = await Promise.all([
      store.settle({ holdId: 'r1', subject, usage: usage(500, 100), now: T0 }),
      store.settle({ holdId: 'r1', subject, usage: usage(1, 1), now: T0 }),
    ]);
    expect([first.duplicate, second.duplicate].sort()).toEqual([false, true]);
    expect(second.entry).toEqual(first.entry);
    const stands = first.entry.inputTokens + first.entry.outputTokens;
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage).toEqual({ usedTokens: stands, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
    expect((await store.listAlerts({ limit: 10 })).map((r) => r.alert.threshold)).toEqual(stands >= 500 ? [50] : []);
    for (const row of await store.counterAudit()) expect([row.stored, row.cached]).toEqual([row.ledger, row.ledger]);
  });

  it('the first settle of a new month counts the month from the ledger without the entries of its own batch', async () => {
    const store = await db.open({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const { subject } = await userWithKey(store, 'alice');
    const nextMonth = Date.UTC(2026, 11, 1); // T0 is in November 2026
    for (const holdId of ['m1', 'm2']) await store.reserve({ holdId, subject, quote, now: T0, ttlMs: 30 * 86_400_000 });
    // Requests that began in November and end in December: December's counter does not exist yet,
    // and these settles, in one batch, are the first to count it.
    const settled = await Promise.all([1, 2].map((i) => store.settle({ holdId: `m${i}`, subject, usage: usage(10 * i, 0), now: nextMonth + i })));
    expect(settled.map((s) => s.duplicate)).toEqual([false, false]);
    const [state] = await store.budgetStates(userScopes(subject), nextMonth + 3);
    expect(state?.usage.usedTokens).toBe(30);
    for (const row of await store.counterAudit()) expect([row.stored, row.cached ?? row.ledger]).toEqual([row.ledger, row.ledger]);
  });
});
