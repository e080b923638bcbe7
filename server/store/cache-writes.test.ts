import { describe, expect, it } from 'vitest';
import { monthlyUserTokens, TTL, usage } from './testing/store-fixtures.js';
import { T0, userWithKey } from '../testing/harness.js';
import { storeKinds } from './testing/store-kinds.js';
import type { Usage } from './types.js';

const DAY = 86_400_000;

/**
 * A Claude request that read 1,000 prompt tokens from the cache and wrote 3,000 to it, 2,000 of
 * them for an hour (all parts of its 5,000-token prompt), priced by the proxy before it settles.
 */
const claudeUsage = (costMicros: number): Usage => ({
  ...usage(5_000, 200, costMicros),
  model: 'claude-sonnet-4-5',
  cachedTokens: 1_000,
  cacheWriteTokens: 3_000,
  cacheWrite1hTokens: 2_000,
});

describe.each(storeKinds())('$name store: cache writes, a token class of their own', ({ open }) => {
  it('keeps both cache-write counts on the entry settled, the duplicate settle and the entries read back', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'req-claude', subject, quote: { tokens: 5_200, micros: 0 }, now: T0, ttlMs: TTL });
    const settled = await store.settle({ holdId: 'req-claude', subject, usage: claudeUsage(24_150), now: T0 });
    expect(settled.entry).toMatchObject({ inputTokens: 5_000, cachedTokens: 1_000, cacheWriteTokens: 3_000, cacheWrite1hTokens: 2_000, costMicros: 24_150 });

    const again = await store.settle({ holdId: 'req-claude', subject, usage: usage(1, 1), now: T0 + 1 });
    expect(again).toEqual({ entry: settled.entry, duplicate: true });
    expect(await store.recentEntries(1)).toEqual([settled.entry]);
  });

  it('records 0 for a settle that names no cache writes (an OpenAI request, an older caller)', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const { entry } = await store.settle({ holdId: 'req-gpt', subject, usage: usage(100, 10), now: T0 });
    expect(entry).toMatchObject({ cacheWriteTokens: 0, cacheWrite1hTokens: 0 });
    expect((await store.recentEntries(1))[0]).toMatchObject({ cacheWriteTokens: 0, cacheWrite1hTokens: 0 });
  });

  it('sums cache writes in usage reports, before and after retention rolls the entries up', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    await store.settle({ holdId: 'a', subject, usage: claudeUsage(24_150), now: T0 });
    await store.settle({ holdId: 'b', subject, usage: claudeUsage(24_150), now: T0 + 60_000 });
    await store.settle({ holdId: 'c', subject, usage: usage(100, 10), now: T0 + 120_000 });
    const report = () => store.usageReport({ groupBy: ['user', 'model'], from: T0 - DAY, to: T0 + DAY, timeZone: 'UTC' });

    const before = await report();
    expect(before.map((r) => [r.groups, r.inputTokens, r.cachedTokens, r.cacheWriteTokens])).toEqual([
      [['alice', 'claude-sonnet-4-5'], 10_000, 2_000, 6_000],
      [['alice', 'gpt-4o-mini'], 100, 0, 0],
    ]);
    expect(await store.rollUpLedger(T0 + DAY)).toBe(3);
    expect(await store.recentEntries(5)).toEqual([]);
    expect(await report()).toEqual(before);
  });
});
