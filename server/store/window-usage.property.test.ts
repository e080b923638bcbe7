import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketsAt, nextResetAt, type WindowSpec } from '../quota/window.js';
import { T0, userWithKey } from '../testing/harness.js';
import { usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';

/**
 * A window's usage is no longer summed from its buckets on every read: a rolling window keeps a
 * running total that the bucket rotation maintains (SQLite in memory, PostgreSQL in window_totals).
 * Whatever the order of settles, clock jumps, and calls made with a clock behind (another instance
 * whose clock is late), every read must answer what the ledger says: the entries inside the
 * window at the reader's time, and the reset time of its oldest used bucket.
 */

const WINDOWS: readonly WindowSpec[] = [{ kind: 'rolling', hours: 2 }, { kind: 'rolling', hours: 5 }, { kind: 'day', timeZone: 'Asia/Shanghai' }];

type Step =
  | { op: 'settle'; tokens: number; behindMs: number }
  /** Settles made at once, each with its own clock: on PostgreSQL they share one batch (and may straddle a bucket's edge). */
  | { op: 'together'; settles: Array<{ tokens: number; behindMs: number }> }
  | { op: 'advance'; ms: number }
  | { op: 'readBehind'; behindMs: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('settle' as const), tokens: fc.integer({ min: 0, max: 500 }), behindMs: fc.constantFrom(0, 0, 0, 90_000, 7 * 60_000) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('together' as const),
      settles: fc.array(fc.record({ tokens: fc.integer({ min: 0, max: 500 }), behindMs: fc.integer({ min: 0, max: 10 * 60_000 }) }), { minLength: 2, maxLength: 5 }),
    }),
  },
  // Steps from a few seconds to beyond a whole 5-hour window, so buckets rotate one, several or all at a time.
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 10 * 60_000 }), fc.integer({ min: 0, max: 6 * 3_600_000 })) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('readBehind' as const), behindMs: fc.integer({ min: 1, max: 15 * 60_000 }) }) },
);

/** Half the tokens in, half out, 3 micro-dollars a token. */
const usageOf = (tokens: number) => usage(Math.floor(tokens / 2), tokens - Math.floor(tokens / 2), tokens * 3);

describe.each(storeKinds())('window usage on $name', (kind) => {
  it('equals the ledger entries inside the window at every read, with the reset time of the oldest used bucket', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 5, maxLength: kind.name === 'postgres' ? 25 : 60 }), async (steps) => {
        const store = await kind.open();
        const { subject } = await userWithKey(store, 'ana');
        for (const window of WINDOWS) {
          await store.putBudget({ scope: { kind: 'user', id: 'ana' }, window, limitTokens: 1e12, limitMicros: null, thresholds: [], onLimit: 'reject', downgradeTo: null, models: window.kind === 'rolling' && window.hours === 5 ? ['gpt-*'] : null }, T0);
        }
        const entries: Array<{ at: number; tokens: number; micros: number }> = [];
        let now = T0;
        let n = 0;

        const check = async (at: number) => {
          const states = await store.budgetStates([{ kind: 'user', id: 'ana' }], at);
          expect(states).toHaveLength(WINDOWS.length);
          for (const state of states) {
            const buckets = bucketsAt(state.budget.window, at);
            const from = (buckets[0] as { start: number }).start;
            const to = (buckets.at(-1) as { end: number | null }).end ?? Number.MAX_SAFE_INTEGER;
            const inside = entries.filter((e) => e.at >= from && e.at < to);
            const label = `${state.budget.key} at ${new Date(at).toISOString()}`;
            expect(state.usage.usedTokens, label).toBe(inside.reduce((s, e) => s + e.tokens, 0));
            expect(state.usage.usedMicros, label).toBe(inside.reduce((s, e) => s + e.micros, 0));
            const oldest = buckets.find((b) => inside.some((e) => e.tokens + e.micros > 0 && e.at >= b.start && e.at < (b.end ?? Infinity)));
            expect(state.resetsAt, label).toBe(nextResetAt(state.budget.window, at, oldest?.start ?? null));
          }
        };

        for (const step of steps) {
          if (step.op === 'advance') now += step.ms;
          else if (step.op === 'readBehind') await check(now - step.behindMs);
          else {
            const settles = step.op === 'settle' ? [step] : step.settles;
            const held = await Promise.all(
              settles.map(async ({ tokens, behindMs }) => {
                const holdId = `h${n++}`;
                const reserved = await store.reserve({ holdId, subject, quote: { tokens, micros: 0 }, now: now - behindMs, ttlMs: 60_000 });
                expect(reserved.ok).toBe(true);
                return { holdId, tokens, at: now - behindMs };
              }),
            );
            await Promise.all(held.map(({ holdId, tokens, at }) => store.settle({ holdId, subject, usage: usageOf(tokens), now: at })));
            for (const { at, tokens } of held) entries.push({ at, tokens, micros: tokens * 3 });
          }
          await check(now);
        }
        await store.close();
      }),
      { numRuns: kind.name === 'postgres' ? 12 : 60 },
    );
  });
});
