import { describe, expect, it } from 'vitest';
import { memoryStore, T0 } from '../../testing/harness.js';
import type { Usage } from '../types.js';

describe('SqliteStore.settle', () => {
  it('returns the entry exactly as the ledger holds it', async () => {
    const store = memoryStore();
    await store.createUser({ id: 'alice', name: 'Alice', projectId: null }, T0);
    const subject = { userId: 'alice', projectId: null, keyId: 'key_a' };
    const usage: Usage = {
      model: 'gpt-4o',
      inputTokens: 1200,
      outputTokens: 345,
      cachedTokens: 1024,
      reasoningTokens: 128,
      costMicros: 4567,
      source: 'upstream',
      outcome: 'cut_off',
      latencyMs: 812,
      sessionId: 'chat-42',
      tags: { task: 'summarize', env: 'dev' },
    };
    const plain: Usage = { ...usage, cachedTokens: 0, reasoningTokens: 0, source: 'estimated', outcome: 'ok', sessionId: null, tags: {} };
    const settled = [];
    for (const [i, u] of [usage, plain].entries()) {
      const holdId = `req_${i}`;
      const reserved = await store.reserve({ holdId, subject, quote: { tokens: 10, micros: 0 }, now: T0, ttlMs: 60_000 });
      expect(reserved.ok).toBe(true);
      settled.push(await store.settle({ holdId, subject, usage: u, now: T0 + i }));
    }
    const stored = (await store.recentEntries(2)).reverse();
    expect(settled.map((s) => s.entry)).toEqual(stored);
    expect(stored[0]).toMatchObject({ requestId: 'req_0', at: T0, ...subject, ...usage });
    // Settling again changes nothing and gives the same entry back.
    const again = await store.settle({ holdId: 'req_0', subject, usage: plain, now: T0 + 5 });
    expect(again).toEqual({ entry: stored[0], duplicate: true });
    await store.close();
  });
});
