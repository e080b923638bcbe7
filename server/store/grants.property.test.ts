import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Budget } from '../quota/budgets.js';
import { T0, userWithKey } from '../testing/harness.js';
import { bucketAt } from '../quota/window.js';
import { storeKinds } from './testing/store-kinds.js';
import type { Grant } from './types.js';

/**
 * The engine with grants, for any interleaving of reservations, settles, grants and the clock
 * moving across windows: used + reserved never exceeds a budget's limit plus the grants active in
 * that window, and a grant never applies outside its span (the limit a state reports is exactly the
 * budget's own plus the grants active at that instant).
 */

const HOUR = 3_600_000;

type Op =
  | { op: 'reserve'; tokens: number }
  | { op: 'settle'; share: number }
  | { op: 'grant'; tokens: number; budget: number }
  | { op: 'advance'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('reserve' as const), tokens: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('settle' as const), share: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('grant' as const), tokens: fc.integer({ min: 1, max: 500 }), budget: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 20 * HOUR }) }) },
);

/** Runs per store: each PostgreSQL step is a round trip, so fewer runs there keep the test in its time. */
const RUNS = { sqlite: 40, postgres: 15 };

describe.each(storeKinds())('$name store: grants in the engine', ({ name, open }) => {
  it('never lets usage pass limit plus the active grants, and never applies a grant outside its window', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 100, max: 1_000 }), fc.integer({ min: 200, max: 3_000 }), fc.array(opArb, { minLength: 1, maxLength: 40 }), async (dayLimit, weekLimit, ops) => {
        const store = await open();
        try {
          const { subject } = await userWithKey(store, 'alice');
          const put = async (window: Budget['window'], limitTokens: number) =>
            (await store.putBudget({ scope: { kind: 'user', id: 'alice' }, window, limitTokens, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null }, T0)).budget;
          const budgets = [await put({ kind: 'day', timeZone: 'Asia/Shanghai' }, dayLimit), await put({ kind: 'week', timeZone: 'UTC' }, weekLimit)];
          const grants: Grant[] = [];
          const live: Array<{ id: string; tokens: number }> = [];
          let now = T0;
          let n = 0;
          for (const op of ops) {
            if (op.op === 'reserve') {
              const id = `r${n++}`;
              const held = await store.reserve({ holdId: id, subject, quote: { tokens: op.tokens, micros: 0 }, now, ttlMs: 30 * 24 * HOUR });
              if (held.ok) live.push({ id, tokens: op.tokens });
            } else if (op.op === 'settle') {
              const hold = live.shift();
              if (hold) {
                const usage = { model: 'gpt-4o-mini', inputTokens: 0, outputTokens: Math.floor(hold.tokens * op.share), cachedTokens: 0, reasoningTokens: 0, costMicros: 0 };
                await store.settle({ holdId: hold.id, subject, now, usage: { ...usage, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} } });
              }
            } else if (op.op === 'grant') {
              const budget = budgets[op.budget] as Budget;
              const window = bucketAt(budget.window, now);
              grants.push(
                await store.createGrant(
                  { budgetKey: budget.key, scope: budget.scope, tokens: op.tokens, micros: 0, startsAt: now, endsAt: window.end as number, decidedBy: 'admin', requestId: null, reason: null },
                  now,
                ),
              );
            } else {
              // Requests end before the clock moves on (a hold lasts as long as its request: seconds).
              for (const hold of live.splice(0)) await store.release(hold.id);
              now += op.ms;
            }
            for (const state of await store.budgetStates([{ kind: 'user', id: 'alice' }], now)) {
              const base = budgets.find((b) => b.key === state.budget.key) as Budget;
              const active = grants.filter((g) => g.budgetKey === base.key && g.startsAt <= now && now < g.endsAt);
              const limit = (base.limitTokens as number) + active.reduce((sum, g) => sum + g.tokens, 0);
              expect(state.budget.limitTokens).toBe(limit);
              expect((state.grants ?? []).map((g) => g.id).sort()).toEqual(active.map((g) => g.id).sort());
              expect(state.usage.usedTokens + state.usage.reservedTokens).toBeLessThanOrEqual(limit);
            }
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: RUNS[name] },
    );
  }, 120_000);
});
