import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { hashSecret, newUserKey } from '../auth/secrets.js';
import { waitFor } from '../testing/fake-openai.js';
import { eventually, testConfig } from '../testing/harness.js';
import { streamStories } from '../testing/concurrent-streams.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const ask = (text: string) => [{ role: 'user' as const, content: text }];

async function charged(p: ProxyHarness) {
  const rows = await p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
  return rows.reduce(
    (sum, r) => ({ total: sum.total + r.totalTokens, output: sum.output + r.outputTokens, requests: sum.requests + r.requests }),
    { total: 0, output: 0, requests: 0 },
  );
}

describe('budgets at the proxy', () => {
  it('refuses with 429 insufficient_quota naming the budget, and the SDK does not retry', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(50)] });
    const client = proxy.client(proxy.alice.secret, { maxRetries: 3 });
    const error = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('x'.repeat(400)) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const e = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.code).toBe('insufficient_quota');
    expect(e.type).toBe('insufficient_quota');
    expect(e.message).toContain('user:alice');
    // Nothing is spent yet: the request does not fit, and the message says so and what remains.
    expect(e.message).toMatch(/^429 This request does not fit in your lobe-quota budget user:alice: it needs about \d+ tokens \(its prompt and at least 1 output tokens\), but only 50 tokens remain \(0 tokens of 50 tokens used this month \(UTC\)\)\. It resets at 2026-12-01T00:00:00Z\.$/);
    expect(e.headers?.get('x-should-retry')).toBe('false');
    expect(Number(e.headers?.get('retry-after'))).toBe((Date.parse('2026-12-01T00:00:00Z') - proxy.svc.clock.now()) / 1000);
    expect(client.calls()).toBe(1);
    expect(proxy.fake.requests).toHaveLength(0);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('carries x-quota-limit / remaining / reset of the binding budget on proxied responses', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const { response } = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages: ask('hi') }).withResponse();
    expect(response.headers.get('x-quota-limit')).toBe('100000');
    expect(response.headers.get('x-quota-unit')).toBe('tokens');
    expect(response.headers.get('x-quota-reset')).toBe('2026-12-01T00:00:00Z');
    expect(Number(response.headers.get('x-quota-remaining'))).toBeLessThan(100_000);
  });

  it('cuts a stream whose upstream ignores max_tokens at the budget: finish_reason length, then [DONE]', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(600)], config: { proxy: { ...testConfig().proxy, leaseTokens: 64 } } });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true, chunkDelayMs: 1 });
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${proxy.alice.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: ask('go on forever'), stream: true, stream_options: { include_usage: true } }),
    });
    const text = await response.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')) as { choices: Array<{ finish_reason: string | null }>; usage?: { completion_tokens: number; prompt_tokens: number } | null });
    const usageChunk = chunks.at(-1);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
    const delivered = chunks.filter((c) => c.choices.length > 0).length - 2; // minus role and finish chunks
    expect(usageChunk?.usage?.completion_tokens).toBe(delivered);
    const total = await charged(proxy);
    expect(total.total).toBeLessThanOrEqual(600);
    expect(total.total).toBeGreaterThan(600 - 64);
    expect(total.output).toBe(delivered);
    await waitFor(() => (proxy as ProxyHarness).fake.aborted === 1, 2_000, 'the upstream request to be aborted');
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('a client that leaves mid-stream is charged what it was sent, and its hold is released at once', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 2_000, chunkDelayMs: 2 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('long story'), stream: true });
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) received++;
      if (received === 10) break; // leaves: the SDK aborts the request
    }
    await waitFor(() => (proxy as ProxyHarness).fake.aborted === 1, 2_000, 'the upstream request to be aborted');
    const store = proxy.svc.store;
    await eventually(async () => (await store.listHolds()).length === 0, 1_000, 'the hold to be released');
    const total = await charged(proxy);
    expect(total.requests).toBe(1);
    expect(total.output).toBeGreaterThanOrEqual(10);
    expect(total.output).toBeLessThan(2_000);
  });

  it('60 concurrent streams of ~500 tokens share a 20,000-token budget: never over, at least 18,000 served', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(20_000)] });
    const client = proxy.client(proxy.alice.secret);
    const outcomes = await streamStories(proxy.fake, () => client, 60, 500);
    const total = await charged(proxy);
    expect(total.total).toBeLessThanOrEqual(20_000);
    expect(total.total).toBeGreaterThanOrEqual(18_000);
    expect(total.output).toBe(outcomes.reduce((sum, o) => sum + o.pieces, 0));
    expect(outcomes.filter((o) => o.finish === 'stop').length).toBeGreaterThan(0);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
    const status = (await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { usage: number };
    expect(status.usage).toBe(total.total);
  });

  it('rate limits per key: the request over the limit gets 429 rate_limit_exceeded with Retry-After', async () => {
    proxy = await startProxy({ config: { rateLimits: { key: { requestsPerMinute: 2 } } } });
    const client = proxy.client(proxy.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('1') });
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('2') }).withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const error = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('3') }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe('rate_limit_exceeded');
    expect(Number(error.headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(proxy.fake.requests).toHaveLength(2);
  });
});

describe('who pays', () => {
  it('a service key charges the end user named in X-Quota-User; a personal key may not name anyone', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const { store, clock } = proxy.svc;
    await store.createUser({ id: 'bob', name: 'Bob', projectId: null }, clock.now());
    const service = newUserKey();
    await store.createKey({ id: 'key_lobechat', userId: 'alice', name: 'lobechat server', service: true, secretHash: hashSecret(service.secret), prefix: service.prefix }, clock.now());
    const asService = proxy.client(service.secret);
    await asService.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('hi') }, { headers: { 'X-Quota-User': 'bob' } });
    await asService.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('hi'), user: 'bob' });
    const rows = await store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
    expect(rows.map((r) => [r.group, r.requests])).toEqual([['bob', 2]]);

    const personal = proxy.client(proxy.alice.secret);
    const denied = (await personal.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('hi') }, { headers: { 'X-Quota-User': 'bob' } }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(denied.status).toBe(403);
    expect(denied.code).toBe('end_user_not_allowed');
    // The body's `user` from a personal key is only OpenAI's abuse-monitoring field: alice pays.
    await personal.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('hi'), user: 'bob' });
    const after = await store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
    expect(after.map((r) => [r.group, r.requests]).sort()).toEqual([['alice', 1], ['bob', 2]]);
  });

  it('records X-Quota-Session and X-Quota-Tags in the ledger', async () => {
    proxy = await startProxy();
    await proxy.client(proxy.alice.secret).chat.completions.create(
      { model: 'gpt-4o-mini', messages: ask('hi') },
      { headers: { 'X-Quota-Session': 'sess-1', 'X-Quota-Tags': 'task=summarize,env=dev' } },
    );
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ userId: 'alice', sessionId: 'sess-1', tags: { task: 'summarize', env: 'dev' }, source: 'upstream', outcome: 'ok' });
  });
});
