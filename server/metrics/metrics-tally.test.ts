import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { createPriceBook } from '../proxy/pricing.js';
import type { LedgerEntry } from '../store/types.js';
import { memoryStore, T0 } from '../testing/harness.js';
import { Metrics } from './metrics.js';

const MODEL = 'gpt-4o-mini';

/** A ledger entry of `tokens` in and out, as a settle gives one to recordSettled. */
const entry = (inputTokens: number, outputTokens: number): LedgerEntry => ({
  id: 1,
  requestId: 'r',
  at: T0,
  userId: 'alice',
  projectId: null,
  keyId: 'key_a',
  model: MODEL,
  upstream: null,
  inputTokens,
  outputTokens,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: 0,
  reasoningTokens: 0,
  costMicros: 1_000,
  source: 'upstream',
  outcome: 'ok',
  latencyMs: 1,
  sessionId: null,
  tags: {},
  overrunTokens: 0,
  savedTokens: 0,
  savedMicros: 0,
});

async function sample(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const families = parsePrometheusTextFormat((await metrics.render()).text);
  const found = families.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return found && 'value' in found ? Number(found.value) : undefined;
}

describe('Metrics: request counters added up between scrapes', () => {
  it('every scrape shows every request settled before it, the series a request touched at 0 included', async () => {
    const store = memoryStore();
    const metrics = new Metrics({ store, clock: new ManualClock(T0), prices: createPriceBook() });
    metrics.recordSettled(entry(10, 5), { promptTokens: 10, outputTokens: null });
    metrics.recordSettled(entry(20, 7), { promptTokens: 20, outputTokens: null });
    expect(await sample(metrics, 'lobe_quota_tokens_total', { model: MODEL, kind: 'input' })).toBe(30);
    expect(await sample(metrics, 'lobe_quota_tokens_total', { model: MODEL, kind: 'cached' })).toBe(0);
    metrics.recordSettled(entry(1, 1), { promptTokens: 1, outputTokens: null });
    metrics.recordOutcome(MODEL, 'upstream_error');
    expect(await sample(metrics, 'lobe_quota_tokens_total', { model: MODEL, kind: 'input' })).toBe(31);
    expect(await sample(metrics, 'lobe_quota_tokens_total', { model: MODEL, kind: 'output' })).toBe(13);
    expect(await sample(metrics, 'lobe_quota_requests_total', { model: MODEL, outcome: 'ok' })).toBe(3);
    expect(await sample(metrics, 'lobe_quota_requests_total', { model: MODEL, outcome: 'upstream_error' })).toBe(1);
    expect(await sample(metrics, 'lobe_quota_cost_usd_total', { model: MODEL })).toBeCloseTo(0.003, 12);
    await store.close();
  });

  it('refuses a negative count where it is recorded, as prom-client does, and the next scrape still works', async () => {
    const store = memoryStore();
    const metrics = new Metrics({ store, clock: new ManualClock(T0), prices: createPriceBook() });
    expect(() => metrics.recordSettled(entry(-1, 5), { promptTokens: 1, outputTokens: null })).toThrow('It is not possible to decrease a counter');
    metrics.recordSettled(entry(2, 2), { promptTokens: 2, outputTokens: null });
    expect(await sample(metrics, 'lobe_quota_tokens_total', { model: MODEL, kind: 'input' })).toBe(2);
    await store.close();
  });
});
