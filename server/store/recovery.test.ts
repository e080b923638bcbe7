import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { recoverHolds } from '../proxy/recover-holds.js';
import { T0, userWithKey } from '../testing/harness.js';
import { monthlyUserTokens, TTL, usage, userScopes } from './testing/store-fixtures.js';
import { INSTANCE_TIMEOUT_MS, storeKinds } from './testing/store-kinds.js';
import type { PendingCharge } from './types.js';

/**
 * Requests that were still running when their process died (SQLite: killed and started again on
 * the same file; PostgreSQL: an instance whose heartbeat stopped) are settled at their last count
 * by whoever comes next, once each, instead of vanishing with their holds.
 */
const kinds = storeKinds();

const globalUsd: DefaultBudget = { scope: 'global', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd: 1_000, onLimit: 'reject' };

/** gpt-4o at $2.50 / $1.25 / $10 per 1M tokens. */
const streaming: PendingCharge = {
  model: 'gpt-4o',
  inputTokens: 1_000,
  price: { inputMicrosPerMillion: 2_500_000, cachedInputMicrosPerMillion: 1_250_000, outputMicrosPerMillion: 10_000_000 },
  sessionId: 'chat-7',
  tags: { task: 'story' },
};
const quote = { tokens: 1_000, micros: 2_500, output: { wantTokens: 256, minTokens: 1, microsPerMillion: 10_000_000 } };
const LATER = T0 + INSTANCE_TIMEOUT_MS + 45_000;

describe.each(kinds)('$name store: requests interrupted by the death of their process', ({ crashable }) => {
  it('are settled once, at their last count, as recovered and interrupted; holds without a pending charge are released', async () => {
    const { store, successor } = await crashable({ defaultBudgets: [monthlyUserTokens(100_000), globalUsd] }, T0);
    const { subject } = await userWithKey(store, 'alice');
    // A stream that grew its lease twice, having delivered 500 tokens by the second time.
    expect((await store.reserve({ holdId: 'story', subject, quote, now: T0, ttlMs: TTL, pending: streaming })).ok).toBe(true);
    expect((await store.extend('story', { tokens: 256, micros: 2_560 }, T0 + 1_000, TTL, 256)).ok).toBe(true);
    expect((await store.extend('story', { tokens: 256, micros: 2_560 }, T0 + 2_000, TTL, 500)).ok).toBe(true);
    // One that was still waiting for its first token, of an unpriced model.
    const local = { ...streaming, model: 'local-llama', price: null, sessionId: null, tags: {} };
    expect((await store.reserve({ holdId: 'waiting', subject, quote, now: T0 + 500, ttlMs: TTL, pending: local })).ok).toBe(true);
    // One without a pending charge, and one that settled before the end: neither is recovered.
    expect((await store.reserve({ holdId: 'bare', subject, quote, now: T0, ttlMs: TTL })).ok).toBe(true);
    expect((await store.reserve({ holdId: 'done', subject, quote, now: T0, ttlMs: TTL, pending: streaming })).ok).toBe(true);
    await store.settle({ holdId: 'done', subject, usage: usage(1_000, 20, 1_200), now: T0 + 3_000 });

    const next = await successor(LATER);
    await next.expireHolds(LATER);
    const settled = await recoverHolds(next, LATER);
    expect(settled.map((s) => [s.entry.requestId, s.duplicate])).toEqual([
      ['story', false],
      ['waiting', false],
    ]);
    const entries = Object.fromEntries((await next.recentEntries(10)).map((e) => [e.requestId, e]));
    expect(entries.story).toMatchObject({
      ...subject,
      at: LATER,
      model: 'gpt-4o',
      inputTokens: 1_000,
      outputTokens: 500,
      cachedTokens: 0,
      reasoningTokens: 0,
      // 1,000 × $2.50/M + 500 × $10/M
      costMicros: 7_500,
      source: 'recovered',
      outcome: 'interrupted',
      latencyMs: 2_000,
      sessionId: 'chat-7',
      tags: { task: 'story' },
    });
    expect(entries.waiting).toMatchObject({ model: 'local-llama', inputTokens: 1_000, outputTokens: 0, costMicros: 0, source: 'recovered', outcome: 'interrupted', latencyMs: 0 });
    expect(entries.done).toMatchObject({ source: 'upstream', outputTokens: 20 });
    expect(Object.keys(entries).sort()).toEqual(['done', 'story', 'waiting']);

    // Nothing is held any more, the counters are the ledger's sums, and nothing is handed out twice.
    expect(await next.listHolds()).toEqual([]);
    const states = await next.budgetStates(userScopes(subject), LATER);
    expect(states.map((s) => s.usage)).toEqual([
      { usedTokens: 1_020 + 1_500 + 1_000, usedMicros: 1_200 + 7_500, reservedTokens: 0, reservedMicros: 0 },
      { usedTokens: 1_020 + 1_500 + 1_000, usedMicros: 1_200 + 7_500, reservedTokens: 0, reservedMicros: 0 },
    ]);
    for (const row of await next.counterAudit()) expect([row.stored ?? row.ledger, row.cached ?? row.ledger]).toEqual([row.ledger, row.ledger]);
    expect(await recoverHolds(next, LATER + 120_000)).toEqual([]);
    const again = await successor(LATER + 180_000);
    expect(await again.orphanedHolds(LATER + 180_000)).toEqual([]);
  });

  it('a recovered request crossing a threshold fires its alert like any settle', async () => {
    const alerts = { channelsFor: () => ['ops'], projection: false };
    const { store, successor } = await crashable({ defaultBudgets: [monthlyUserTokens(2_000)], alerts }, T0);
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'story', subject, quote, now: T0, ttlMs: TTL, pending: streaming });
    await store.extend('story', { tokens: 256, micros: 2_560 }, T0 + 1_000, TTL, 256);
    const next = await successor(LATER);
    await recoverHolds(next, LATER);
    const fired = await next.listAlerts({ limit: 10 });
    // 1,256 of 2,000 tokens: past 50 %.
    expect(fired.map((r) => [r.alert.kind, r.alert.threshold, r.alert.usage])).toEqual([['threshold', 50, 1_256]]);
    expect(fired[0]?.deliveries.map((d) => d.state)).toEqual(['pending']);
  });
});
