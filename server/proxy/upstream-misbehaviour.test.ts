import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

const userTokens = (limitTokens: number): DefaultBudget => ({ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens, limitUsd: null, onLimit: 'reject' });
const messages = [{ role: 'user' as const, content: 'hi' }];

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

type ApiError = InstanceType<typeof OpenAI.APIError>;

async function expectNothingCharged(p: ProxyHarness) {
  expect(await p.svc.store.recentEntries(10)).toEqual([]);
  expect(await p.svc.store.listHolds()).toEqual([]);
}

describe('an upstream that misbehaves: what the client hears, what is charged', () => {
  it('an upstream 429 keeps its Retry-After, so the SDK waits as the upstream asked', async () => {
    proxy = await startProxy({ defaultBudgets: [userTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '7', 'retry-after-ms': '7000' } });
    const error = (await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.headers?.get('retry-after')).toBe('7');
    expect(error.headers?.get('retry-after-ms')).toBe('7000');
    await expectNothingCharged(proxy);
  });

  it('an upstream 401 is not the user’s key: a 502 that says lobe-quota’s own key was refused', async () => {
    proxy = await startProxy({ defaultBudgets: [userTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'error', status: 401 }, { kind: 'error', status: 401 });
    const client = proxy.client(proxy.alice.secret);
    for (const stream of [false, true]) {
      const error = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream }).catch((e: unknown) => e)) as ApiError;
      expect(error).not.toBeInstanceOf(OpenAI.AuthenticationError);
      expect(error.status).toBe(502);
      expect(error.code).toBe('upstream_auth_failed');
      expect(error.message).toContain("lobe-quota's own key");
    }
    await expectNothingCharged(proxy);
  });

  it.each([false, true])('an upstream redirect (stream: %s) is a 502 naming the base URL, not an empty success; nothing charged', async (stream) => {
    proxy = await startProxy({ defaultBudgets: [userTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'raw', status: 302, headers: { location: 'https://login.example.com/' }, body: '' });
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      redirect: 'manual',
      headers: { authorization: `Bearer ${proxy.alice.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream }),
    });
    expect(response.status).toBe(502);
    expect(response.headers.get('location')).toBeNull();
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('upstream_redirect');
    expect(body.error.message).toContain('base URL');
    await expectNothingCharged(proxy);
  });

  it.each([
    ['HTML from a captive portal', '<html><body>Sign in</body></html>'],
    ['a truncated JSON answer', '{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hel'],
    ['a JSON array', '[1, 2, 3]'],
  ])('a 200 that is not a JSON object (%s) is a 502, nothing charged', async (_label, body) => {
    proxy = await startProxy({ defaultBudgets: [userTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'raw', status: 200, headers: { 'content-type': 'application/json' }, body });
    const error = (await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(502);
    expect(error.code).toBe('upstream_bad_answer');
    await expectNothingCharged(proxy);
  });

  it.each([
    ['negative', { prompt_tokens: -50, completion_tokens: -1_000 }],
    ['absurd', { prompt_tokens: 12, completion_tokens: 1e12 }],
    ['fractional', { prompt_tokens: 12.5, completion_tokens: 3 }],
  ])('%s usage from the upstream is not charged: our own count is', async (_label, usage) => {
    proxy = await startProxy({ defaultBudgets: [userTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 7, usage });
    const answer = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(answer.choices[0]?.message.content).toBe(' hi'.repeat(7));
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ source: 'estimated', outputTokens: 7 });
    expect(entry?.inputTokens).toBeGreaterThan(0);
    expect(entry?.inputTokens).toBeLessThan(100);
  });

  it('x-quota-remaining on a whole answer is what remains after it was charged, not minus its own hold', async () => {
    proxy = await startProxy({ defaultBudgets: [userTokens(10_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 20, usage: { prompt_tokens: 30, completion_tokens: 20 } });
    const { data, response } = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 4_000 }).withResponse();
    expect(data.usage?.total_tokens).toBe(50);
    expect(response.headers.get('x-quota-limit')).toBe('10000');
    expect(response.headers.get('x-quota-remaining')).toBe(String(10_000 - 50));
    expect((await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { remaining: number }).toMatchObject({ remaining: 10_000 - 50 });
  });

  it('an upstream that ignores max_tokens on a whole answer: charged what it reports, recorded as an overrun with an alert', async () => {
    proxy = await startProxy({ defaultBudgets: [userTokens(500)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true });
    const answer = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages });
    const sent = proxy.fake.requests[0]?.body as { max_completion_tokens?: number };
    // The budget clamped the request's output, and the upstream was told so.
    expect(sent.max_completion_tokens).toBeLessThan(500);
    expect(answer.usage?.completion_tokens).toBe(5_000);
    const [entry] = await proxy.svc.store.recentEntries(1);
    // The ledger stays the truth: the upstream's 5,000 tokens are charged, and the excess is named.
    expect(entry).toMatchObject({ source: 'upstream', outputTokens: 5_000, overrunTokens: 5_000 - (sent.max_completion_tokens ?? 0) });
    const [alert] = await proxy.svc.store.listAlerts({ kind: 'overrun', limit: 10 });
    expect(alert?.alert).toMatchObject({ kind: 'overrun', overrun: { model: 'gpt-4o-mini', userId: 'alice', chargedOutputTokens: 5_000, allowedOutputTokens: sent.max_completion_tokens } });
  });

  it('output within what was allowed is no overrun', async () => {
    proxy = await startProxy({ defaultBudgets: [userTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 40 });
    await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 40 });
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ outputTokens: 40, overrunTokens: 0 });
    expect(await proxy.svc.store.listAlerts({ kind: 'overrun', limit: 10 })).toEqual([]);
  });
});
