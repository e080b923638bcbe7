import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { DefaultBudget } from '../../config/schema.js';
import { bucketAt, ROLLING_BUCKETS, rollingBucketMs, type Bucket } from '../../quota/window.js';
import { memoryStore, T0 } from '../../testing/harness.js';
import { usage } from '../testing/store-fixtures.js';
import type { SqliteStore } from './sqlite-store.js';

/**
 * A rolling budget's usage is read on every admission. Its window is 60 buckets; the total is kept
 * as the window slides (see RollingTotal) instead of summed over them each time the current
 * bucket moves on.
 */

const HOURS = 1;
const BUCKET_MS = rollingBucketMs(HOURS);
const WINDOW = { kind: 'rolling', hours: HOURS } as const;
const rollingUserBudget = (limitTokens: number): DefaultBudget => ({ scope: 'user', window: WINDOW, limitTokens, limitUsd: null, onLimit: 'reject' });
const subject = { userId: 'alice', projectId: null, keyId: 'key_a' };
const alice = [{ kind: 'user' as const, id: 'alice' }];

/** Counts the store's reads of bucket counters (memory, stored row or ledger alike). */
const countBucketReads = (store: SqliteStore) => vi.spyOn(store as unknown as { bucketUsage: (budget: unknown, bucket: Bucket) => unknown }, 'bucketUsage');

describe('SqliteStore rolling windows', () => {
  it('reads only the bucket that slid in when the window moves on, not the sixty it is made of', async () => {
    const store = memoryStore([rollingUserBudget(1_000_000)]);
    await store.createUser({ id: 'alice', name: 'Alice', projectId: null }, T0);
    const start = bucketAt(WINDOW, T0).start;
    // Usage in every bucket of the window: bucket i holds i + 1 tokens.
    for (let i = 0; i < ROLLING_BUCKETS; i++) {
      await store.settle({ holdId: `r${i}`, subject, usage: usage(0, i + 1), now: start + i * BUCKET_MS });
    }
    const lastBucket = start + (ROLLING_BUCKETS - 1) * BUCKET_MS;
    const [full] = await store.budgetStates(alice, lastBucket);
    expect(full?.usage.usedTokens).toBe((ROLLING_BUCKETS * (ROLLING_BUCKETS + 1)) / 2);
    expect(full?.resetsAt).toBe(start + ROLLING_BUCKETS * BUCKET_MS);

    const reads = countBucketReads(store);
    for (let step = 1; step <= 3; step++) {
      reads.mockClear();
      const [state] = await store.budgetStates(alice, lastBucket + step * BUCKET_MS);
      // The first `step` buckets (1 + 2 + … tokens) slid out; the new one is empty.
      expect(state?.usage.usedTokens).toBe((ROLLING_BUCKETS * (ROLLING_BUCKETS + 1)) / 2 - (step * (step + 1)) / 2);
      expect(state?.resetsAt).toBe(start + (ROLLING_BUCKETS + step) * BUCKET_MS);
      expect(reads).toHaveBeenCalledTimes(1);
    }
    // Within a bucket, no read at all.
    reads.mockClear();
    await store.budgetStates(alice, lastBucket + 3 * BUCKET_MS + 1_000);
    expect(reads).not.toHaveBeenCalled();
    await store.close();
  });

  type Op =
    | { op: 'settle'; tokens: number; micros: number }
    | { op: 'burst'; settles: Array<{ offsetMs: number; tokens: number }> }
    | { op: 'advance'; ms: number }
    | { op: 'retire' }
    | { op: 'rebudget'; limitTokens: number };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('settle' as const), tokens: fc.nat(50), micros: fc.nat(3) }) },
    {
      // Settles of requests that end at once, at clocks a few buckets apart: one group commit.
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('burst' as const),
        settles: fc.array(fc.record({ offsetMs: fc.integer({ min: -2 * BUCKET_MS, max: 2 * BUCKET_MS }), tokens: fc.nat(50) }), { minLength: 2, maxLength: 5 }),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        op: fc.constant('advance' as const),
        // Mostly within a bucket or a few ahead; sometimes past a whole window; sometimes back (clocks of concurrent requests).
        ms: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 * BUCKET_MS }) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * ROLLING_BUCKETS * BUCKET_MS }) },
          { weight: 1, arbitrary: fc.integer({ min: -3 * BUCKET_MS, max: 0 }) },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ op: 'retire' as const }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('rebudget' as const), limitTokens: fc.integer({ min: 1, max: 1_000_000 }) }) },
  );

  it('property: the usage and reset time read always match the settles in the window, whatever the clock does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 80 }), async (ops) => {
        const store = memoryStore([rollingUserBudget(1_000_000)]);
        await store.createUser({ id: 'alice', name: 'Alice', projectId: null }, T0);
        const settled: Array<{ at: number; tokens: number; micros: number }> = [];
        let now = T0;
        const expected = () => {
          const current = bucketAt(WINDOW, now).start;
          const first = current - (ROLLING_BUCKETS - 1) * BUCKET_MS;
          const inWindow = settled.filter((s) => {
            const bucket = bucketAt(WINDOW, s.at).start;
            return bucket >= first && bucket <= current;
          });
          const used = inWindow.filter((s) => s.tokens > 0 || s.micros > 0).map((s) => bucketAt(WINDOW, s.at).start);
          return {
            usedTokens: inWindow.reduce((sum, s) => sum + s.tokens, 0),
            usedMicros: inWindow.reduce((sum, s) => sum + s.micros, 0),
            resetsAt: used.length === 0 ? null : Math.min(...used) + ROLLING_BUCKETS * BUCKET_MS,
          };
        };
        try {
          for (const [i, op] of ops.entries()) {
            if (op.op === 'settle') {
              await store.settle({ holdId: `r${i}`, subject, usage: { ...usage(0, op.tokens), costMicros: op.micros }, now });
              settled.push({ at: now, tokens: op.tokens, micros: op.micros });
            } else if (op.op === 'burst') {
              await Promise.all(
                op.settles.map(({ offsetMs, tokens }, j) => store.settle({ holdId: `r${i}.${j}`, subject, usage: usage(0, tokens), now: now + offsetMs })),
              );
              settled.push(...op.settles.map(({ offsetMs, tokens }) => ({ at: now + offsetMs, tokens, micros: 0 })));
            } else if (op.op === 'advance') {
              now += op.ms;
            } else if (op.op === 'retire') {
              await store.expireHolds(now);
            } else if (op.op === 'rebudget') {
              await store.putBudget(
                { scope: alice[0]!, window: WINDOW, limitTokens: op.limitTokens, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
                now,
              );
            }
            const [state] = await store.budgetStates(alice, now);
            const { usedTokens, usedMicros, resetsAt } = expected();
            expect({ usedTokens: state?.usage.usedTokens, usedMicros: state?.usage.usedMicros, resetsAt: state?.resetsAt }).toEqual({ usedTokens, usedMicros, resetsAt });
          }
          for (const row of store.counterAudit()) expect(row.cached ?? row.stored, row.budgetKey).toEqual(row.ledger);
        } finally {
          await store.close();
        }
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});
