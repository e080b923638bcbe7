import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { ADMIN_TOKEN, T0, testConfig, userWithKey } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const MODEL = 'gpt-4o-mini';
const ask = (text: string) => [{ role: 'user' as const, content: text }];

const defaults: DefaultBudget[] = [
  { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 10_000, limitUsd: null, onLimit: 'reject' },
  // All time, in dollars: it never resets, so it has no reset_seconds series.
  { scope: 'global', window: { kind: 'total' }, limitTokens: null, limitUsd: 100, onLimit: 'reject' },
];

async function scrape(p: ProxyHarness, token = ADMIN_TOKEN) {
  const response = await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const families = parsePrometheusTextFormat(await response.text());
  const family = (name: string) => {
    const found = families.find((f) => f.name === `lobe_quota_${name}`);
    if (!found) throw new Error(`no series lobe_quota_${name}`);
    return found;
  };
  const matches = (labels: Record<string, string> | undefined, want: Record<string, string>) =>
    Object.entries(want).every(([k, v]) => labels?.[k] === v);
  return {
    family,
    /** The value of the one sample of a counter or gauge with these labels, or undefined. */
    value(name: string, labels: Record<string, string> = {}): number | undefined {
      const found = family(name).metrics.filter((m) => matches(m.labels, labels));
      expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
      const sample = found[0];
      return sample && 'value' in sample ? Number(sample.value) : undefined;
    },
    /** An unlabelled histogram: parse-prometheus-text-format merges the label sets of a histogram into one. */
    histogram(name: string, labels: Record<string, string> = {}) {
      const sample = family(name).metrics.find((m) => matches(m.labels, labels));
      if (!sample || !('buckets' in sample)) throw new Error(`no histogram ${name} ${JSON.stringify(labels)}`);
      return { count: Number(sample.count), sum: Number(sample.sum), buckets: sample.buckets };
    },
  };
}

describe('GET /metrics', () => {
  it('counts requests by outcome, tokens and cost as the ledger has them, and reads every budget', async () => {
    proxy = await startProxy({ defaultBudgets: defaults });
    const bob = await userWithKey(proxy.svc.store, 'bob', 'research');
    expect((await proxy.svc.admin('PUT', '/admin/budgets', { scope: 'user:bob', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 5 })).ok).toBe(true);
    expect((await proxy.svc.admin('PUT', '/admin/budgets', { scope: 'project:research', window: { kind: 'week', timeZone: 'UTC' }, limitTokens: 50_000 })).ok).toBe(true);
    const alice = proxy.client(proxy.alice.secret);

    // ok: a whole answer whose usage carries cached and reasoning tokens
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 6, reasoningTokens: 2, usage: { cached_tokens: 3 } });
    await alice.chat.completions.create({ model: MODEL, messages: ask('hello there') });
    // ok: a stream, whose output the proxy counts itself as it goes
    const stream = await alice.chat.completions.create({ model: MODEL, messages: ask('stream please'), stream: true });
    for await (const _chunk of stream) void _chunk;
    // upstream_error: nothing charged
    proxy.fake.enqueue({ kind: 'error', status: 500 });
    expect(await alice.chat.completions.create({ model: MODEL, messages: ask('fail') }).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.InternalServerError);
    // refused: bob's 5-token budget
    expect(await proxy.client(bob.secret).chat.completions.create({ model: MODEL, messages: ask('x'.repeat(100)) }).catch((e: unknown) => e)).toBeInstanceOf(
      OpenAI.RateLimitError,
    );

    const m = await scrape(proxy);
    expect(m.family('requests_total').type).toBe('COUNTER');
    expect(m.value('requests_total', { model: MODEL, outcome: 'ok' })).toBe(2);
    expect(m.value('requests_total', { model: MODEL, outcome: 'upstream_error' })).toBe(1);
    expect(m.value('requests_total', { model: MODEL, outcome: 'refused' })).toBe(1);
    expect(m.value('requests_total', { model: MODEL, outcome: 'cut_off' })).toBeUndefined();

    const [ledger] = await proxy.svc.store.usageReport({ groupBy: 'model', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
    if (!ledger) throw new Error('nothing in the ledger');
    expect(ledger.requests).toBe(2);
    expect(ledger.cachedTokens).toBe(3);
    expect(ledger.reasoningTokens).toBe(2);
    expect(m.value('tokens_total', { model: MODEL, kind: 'input' })).toBe(ledger.inputTokens);
    expect(m.value('tokens_total', { model: MODEL, kind: 'output' })).toBe(ledger.outputTokens);
    expect(m.value('tokens_total', { model: MODEL, kind: 'cached' })).toBe(ledger.cachedTokens);
    expect(m.value('tokens_total', { model: MODEL, kind: 'reasoning' })).toBe(ledger.reasoningTokens);
    expect(m.value('cost_usd_total', { model: MODEL })).toBeCloseTo(ledger.costMicros / 1e6, 9);
    expect(ledger.costMicros).toBeGreaterThan(0);

    // alice's monthly budget: used is everything she was charged; it resets at the month's end
    const aliceBudget = { scope: 'user:alice', period: 'month', unit: 'tokens' };
    expect(m.family('budget_used').type).toBe('GAUGE');
    expect(m.value('budget_used', aliceBudget)).toBe(ledger.totalTokens);
    expect(m.value('budget_limit', aliceBudget)).toBe(10_000);
    expect(m.value('budget_ratio', aliceBudget)).toBeCloseTo(ledger.totalTokens / 10_000, 12);
    expect(m.value('budget_reserved', aliceBudget)).toBe(0);
    expect(m.value('budget_reset_seconds', { scope: 'user:alice', period: 'month' })).toBe((Date.parse('2026-12-01T00:00:00Z') - T0) / 1000);
    expect(m.value('budget_used', { scope: 'user:alice', unit: 'usd' })).toBeUndefined();
    // bob's override replaced the default; nothing was charged to him
    expect(m.value('budget_limit', { scope: 'user:bob', period: 'month', unit: 'tokens' })).toBe(5);
    expect(m.value('budget_used', { scope: 'user:bob', period: 'month', unit: 'tokens' })).toBe(0);
    // the project's budget, shared by alice and bob, appears once (value() checks there is one)
    expect(m.value('budget_used', { scope: 'project:research', period: 'week', unit: 'tokens' })).toBe(ledger.totalTokens);
    expect(m.value('budget_reset_seconds', { scope: 'project:research', period: 'week' })).toBe((Date.parse('2026-11-23T00:00:00Z') - T0) / 1000);
    // the global all-time dollar budget: in dollars, and no reset
    expect(m.value('budget_used', { scope: 'global', period: 'total', unit: 'usd' })).toBeCloseTo(ledger.costMicros / 1e6, 9);
    expect(m.value('budget_limit', { scope: 'global', period: 'total', unit: 'usd' })).toBe(100);
    expect(m.value('budget_reset_seconds', { scope: 'global' })).toBeUndefined();

    // three requests went upstream; the refused one never did
    const latency = m.histogram('proxy_added_latency_seconds');
    expect(m.family('proxy_added_latency_seconds').type).toBe('HISTOGRAM');
    expect(latency.count).toBe(3);
    expect(Number(latency.buckets['+Inf'])).toBe(3);
    expect(latency.sum).toBeGreaterThan(0);
    // both answers reported usage: their prompts are compared; only the stream's output was counted
    expect(m.histogram('estimate_input_token_diff').count).toBe(2);
    expect(m.histogram('estimate_output_token_diff').count).toBe(1);
  });

  it('counts rate-limited requests and streams cut off at the budget', async () => {
    proxy = await startProxy({
      defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 600, limitUsd: null, onLimit: 'reject' }],
      config: { proxy: { ...testConfig().proxy, leaseTokens: 64 }, rateLimits: { user: { requestsPerMinute: 1 } } },
    });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true });
    const alice = proxy.client(proxy.alice.secret);
    const stream = await alice.chat.completions.create({ model: MODEL, messages: ask('go on forever'), stream: true });
    let finish: string | null = null;
    for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe('length');
    const limited = await alice.chat.completions.create({ model: MODEL, messages: ask('again') }).catch((e: unknown) => e);
    expect((limited as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');

    const m = await scrape(proxy);
    expect(m.value('requests_total', { model: MODEL, outcome: 'cut_off' })).toBe(1);
    expect(m.value('requests_total', { model: MODEL, outcome: 'rate_limited' })).toBe(1);
    expect(m.value('requests_total', { model: MODEL, outcome: 'ok' })).toBeUndefined();
    // a cut-off stream is settled on our own count: no upstream usage to compare with
    expect(m.histogram('estimate_output_token_diff').count).toBe(0);
    const ratio = m.value('budget_ratio', { scope: 'user:alice', period: 'month', unit: 'tokens' }) ?? 0;
    expect(ratio).toBeGreaterThan((600 - 64) / 600);
    expect(ratio).toBeLessThanOrEqual(1);
  });

  it('counts a request held in flight as reserved while it runs', async () => {
    proxy = await startProxy({ defaultBudgets: defaults });
    proxy.fake.enqueue({ kind: 'reply', firstByteDelayMs: 300 });
    const pending = proxy.client(proxy.alice.secret).chat.completions.create({ model: MODEL, messages: ask('slow'), max_tokens: 100 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const m = await scrape(proxy);
    expect(m.value('budget_reserved', { scope: 'user:alice', period: 'month', unit: 'tokens' })).toBeGreaterThanOrEqual(100);
    expect(m.value('budget_used', { scope: 'user:alice', period: 'month', unit: 'tokens' })).toBe(0);
    await pending;
  });

  it('keeps /metrics small when thousands of refused requests name random models: they count as model="other"', async () => {
    proxy = await startProxy({ defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1, limitUsd: null, onLimit: 'reject' }] });
    const before = await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const refused = async (model: string) => {
      const response = await fetch(`${proxy?.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${proxy?.alice.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: ask('hello') }),
      });
      await response.body?.cancel();
      return response.status;
    };
    const REFUSED = 3_000;
    const names = Array.from({ length: REFUSED }, (_, i) => `probe-${i}-${randomBytes(32).toString('hex')}`);
    for (let i = 0; i < names.length; i += 25) {
      expect(new Set(await Promise.all(names.slice(i, i + 25).map(refused)))).toEqual(new Set([429]));
    }
    expect(await refused(MODEL)).toBe(429);

    const response = await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await response.text();
    // Two model labels (other and the priced one), a handful of series each.
    expect(text.length - before.length).toBeLessThan(4_000);
    expect(text).not.toContain('probe-');
    const m = await scrape(proxy);
    expect(m.value('requests_total', { model: 'other', outcome: 'refused' })).toBe(REFUSED);
    expect(m.value('requests_total', { model: MODEL, outcome: 'refused' })).toBe(1);
    expect(new Set(m.family('requests_total').metrics.map((s) => s.labels?.model))).toEqual(new Set(['other', MODEL]));
  }, 60_000);

  it('gives a model without a price its own label once an upstream has served it', async () => {
    proxy = await startProxy();
    const alice = proxy.client(proxy.alice.secret);
    await alice.chat.completions.create({ model: 'llama-local', messages: ask('hello') });
    proxy.fake.enqueue({ kind: 'error', status: 404 });
    await alice.chat.completions.create({ model: 'no-such-model', messages: ask('hello') }).catch((e: unknown) => e);
    const m = await scrape(proxy);
    expect(m.value('requests_total', { model: 'llama-local', outcome: 'ok' })).toBe(1);
    expect(m.value('tokens_total', { model: 'llama-local', kind: 'output' })).toBeGreaterThan(0);
    expect(m.value('requests_total', { model: 'other', outcome: 'upstream_error' })).toBe(1);
    expect(m.value('requests_total', { model: 'no-such-model' })).toBeUndefined();
  });

  it('needs the admin token or METRICS_TOKEN: 401 without or with a wrong one, 403 for a user key', async () => {
    const metricsToken = 'prometheus-scrape-token-0123';
    proxy = await startProxy({ config: { metricsToken } });
    const get = (headers: Record<string, string> = {}) => fetch(`${proxy?.url}/metrics`, { headers });

    const none = await get();
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    const wrong = await get({ authorization: 'Bearer not-a-token-at-all-0000' });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const userKey = await get({ authorization: `Bearer ${proxy.alice.secret}` });
    expect(userKey.status).toBe(403);
    expect(((await userKey.json()) as { error: { code: string } }).error.code).toBe('forbidden');

    const scraped = await scrape(proxy, metricsToken);
    expect(scraped.value('budget_used', { scope: 'user:alice' })).toBeUndefined();
    expect((await get({ authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
    // The metrics token reads metrics and nothing else.
    expect((await proxy.svc.as(metricsToken, '/admin/users')).status).toBe(401);
  });
});
