import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { Metrics } from '../metrics/metrics.js';
import { memoryStore, T0 } from '../testing/harness.js';
import { Meter, type MeterRequest } from './meter.js';
import { createPriceBook } from './pricing.js';

const subject = { userId: 'alice', projectId: null, keyId: 'key_a' };
const prices = createPriceBook();
const sonnet = prices.priceOf('claude-sonnet-4-5');

/** A real Meter on a real (in-memory) store, under a monthly dollar budget for the user. */
function meterServices(limitUsd = 1) {
  const store = memoryStore([{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd, onLimit: 'reject' }]);
  const clock = new ManualClock(T0);
  return { store, clock, metrics: new Metrics({ store, clock, prices }), holdTtlMs: 30_000, leaseTokens: 50 };
}

const claudeRequest = (promptTokens: number, streaming: boolean): MeterRequest => ({
  holdId: `req-${promptTokens}-${String(streaming)}`,
  subject,
  model: 'claude-sonnet-4-5',
  promptTokens,
  price: sonnet,
  wantOutput: 1_000,
  streaming,
  sessionId: null,
  tags: {},
});

describe('Meter: a Claude request priced class by class', () => {
  it('quotes a prompt counted above 200k at the long-context tier: $1.200006 does not fit in $1, though $0.600003 would', async () => {
    const services = meterServices();
    const refused = await Meter.admit(services, claudeRequest(200_001, true));
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.quote.micros).toBe(1_200_006);
    expect(refused.quote.output?.microsPerMillion).toBe(22_500_000);
    expect((await Meter.admit(services, claudeRequest(200_000, true))).ok).toBe(true);
  });

  it('holds a long-context stream’s output lease at the tier’s output price', async () => {
    const services = meterServices(10);
    expect((await Meter.admit(services, claudeRequest(200_001, true))).ok).toBe(true);
    const [hold] = await services.store.listHolds();
    // 200,001 prompt tokens at $6 and a 50-token lease at $22.50.
    expect(hold?.micros).toBe(1_200_006 + 1_125);
  });

  it('settles the upstream’s cache reads and 5-minute and 1-hour writes into the ledger, each at its price, and counts them', async () => {
    const services = meterServices();
    const admitted = await Meter.admit(services, claudeRequest(10_000, false));
    if (!admitted.ok) throw new Error('not admitted');
    const upstream = { inputTokens: 10_000, cachedTokens: 2_000, cacheWriteTokens: 5_000, cacheWrite1hTokens: 1_000, outputTokens: 500, reasoningTokens: 0 };
    const settled = await admitted.meter.settle(upstream, 'ok');
    // 3,000 uncached × $3 + 2,000 read × $0.30 + 4,000 written for 5 minutes × $3.75 + 1,000 for an hour × $6 + 500 out × $15
    const costMicros = 9_000 + 600 + 15_000 + 6_000 + 7_500;
    expect(settled?.entry).toMatchObject({ ...upstream, costMicros, source: 'upstream' });
    expect(await services.store.recentEntries(1)).toEqual([settled?.entry]);
    const [budget] = await services.store.budgetStates([{ kind: 'user', id: 'alice' }], T0);
    expect(budget?.usage.usedMicros).toBe(costMicros);
    // …and Prometheus counts the writes as a kind of their own.
    expect((await services.metrics.render()).text).toContain('lobe_quota_tokens_total{model="claude-sonnet-4-5",kind="cache_write"} 5000');
  });
});
