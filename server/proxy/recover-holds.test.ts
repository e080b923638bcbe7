import { describe, expect, it } from 'vitest';
import type { OrphanedHold, SettleRequest, SettleResult } from '../store/types.js';
import { recoverHolds, recoveredUsage } from './recover-holds.js';

const T0 = Date.parse('2026-11-22T12:00:00Z');

const orphan = (over: Partial<OrphanedHold> = {}): OrphanedHold => ({
  hold: { id: 'req_1', subject: { userId: 'alice', projectId: 'research', keyId: 'key_a' }, tokens: 1_512, micros: 0, outputTokens: 512, createdAt: T0, expiresAt: T0 + 900_000 },
  pending: {
    model: 'gpt-4o',
    inputTokens: 1_000,
    price: { inputMicrosPerMillion: 2_500_000, cachedInputMicrosPerMillion: 1_250_000, outputMicrosPerMillion: 10_000_000 },
    sessionId: 'chat-7',
    tags: { task: 'story' },
  },
  deliveredTokens: 333,
  updatedAt: T0 + 4_200,
  ...over,
});

describe('recoveredUsage', () => {
  it.each([
    // 1,000 × $2.50/M + 333 × $10/M = 5,830 µ$
    ['a priced stream', orphan(), { inputTokens: 1_000, outputTokens: 333, costMicros: 5_830, latencyMs: 4_200 }],
    ['one that never grew its hold', orphan({ deliveredTokens: 0, updatedAt: T0 }), { outputTokens: 0, costMicros: 2_500, latencyMs: 0 }],
    ['an unpriced model', orphan({ pending: { ...orphan().pending, price: null } }), { costMicros: 0 }],
    // Rounded up to the next micro-dollar, as every charge is.
    ['a sub-micro-dollar remainder', orphan({ pending: { ...orphan().pending, inputTokens: 1 }, deliveredTokens: 0 }), { costMicros: 3 }],
  ])('%s: its prompt and its last count, priced as any settle', (_, hold, expected) => {
    expect(recoveredUsage(hold)).toMatchObject({
      model: hold.pending.model,
      cachedTokens: 0,
      reasoningTokens: 0,
      source: 'recovered',
      outcome: 'interrupted',
      sessionId: hold.pending.sessionId,
      tags: hold.pending.tags,
      ...expected,
    });
  });
});

describe('recoverHolds', () => {
  it('settles each orphan at the recovery instant; one that fails is logged and left for the next attempt', async () => {
    const settled: SettleRequest[] = [];
    const log: string[] = [];
    const store = {
      orphanedHolds: async () => [orphan(), orphan({ hold: { ...orphan().hold, id: 'req_2' } })],
      settle: async (request: SettleRequest): Promise<SettleResult> => {
        if (request.holdId === 'req_2') throw new Error('disk full');
        settled.push(request);
        return { entry: { ...request.usage, ...request.subject, overrunTokens: 0, id: 1, requestId: request.holdId, at: request.now }, duplicate: false };
      },
    };
    const results = await recoverHolds(store, T0 + 60_000, (m) => log.push(m));
    expect(results.map((r) => r.entry.requestId)).toEqual(['req_1']);
    expect(settled).toEqual([{ holdId: 'req_1', subject: orphan().hold.subject, usage: recoveredUsage(orphan()), now: T0 + 60_000 }]);
    expect(log).toEqual(['could not settle the interrupted request req_2: disk full']);
  });
});
