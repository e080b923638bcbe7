import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { ANTHROPIC_UPSTREAM_KEY, startAnthropicProxy, type AnthropicProxy } from '../testing/anthropic-harness.js';
import OpenAI from 'openai';
import { inputTokensOf } from '../testing/fake-anthropic.js';
import { startFakeOpenAI } from '../testing/fake-openai.js';
import { countingAsTheFakes } from '../testing/counting-as-the-fakes.js';
import { eventually, testConfig } from '../testing/harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { countPromptWith } from './prompt-count.js';
import { createTokenCounter } from './token-count.js';

let proxy: AnthropicProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const MODEL = 'claude-sonnet-4-5';
/** Dollars per 1M tokens, set in the config so each class's share of the cost can be checked here. */
const PRICE = { input: 3, cachedInput: 0.3, output: 15 };
const config = { prices: { [MODEL]: PRICE } };

const ask = (text: string) => [{ role: 'user' as const, content: text }];

async function ledgerRows(p: AnthropicProxy) {
  return p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
}

async function quotaUsage(p: AnthropicProxy): Promise<{ usage: number; reserved: number }> {
  const status = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { usage: number; budgets: Array<{ reservedTokens: number }> };
  return { usage: status.usage, reserved: status.budgets[0]?.reservedTokens ?? 0 };
}

/** Micro-dollars, rounded up once, as the ledger charges them: writes at the input price until a cache-write price is set. */
const costOf = ({ uncached, read, written, output }: { uncached: number; read: number; written: number; output: number }) =>
  Math.ceil((uncached + written) * PRICE.input + read * PRICE.cachedInput + output * PRICE.output);

describe('POST /v1/messages through the official @anthropic-ai/sdk', () => {
  it('a whole answer is charged exactly the upstream usage, its cache reads and writes included', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 12, usage: { input_tokens: 40, cache_read_input_tokens: 300, cache_creation_5m: 50, cache_creation_1h: 20 } });
    const client = proxy.client(proxy.alice.secret);
    const message = await client.messages.create({ model: MODEL, max_tokens: 1024, messages: ask('Say hi twelve times.') });
    expect(message.content).toEqual([{ type: 'text', text: ' hi'.repeat(12) }]);
    expect(message.usage).toMatchObject({ input_tokens: 40, cache_read_input_tokens: 300, cache_creation_input_tokens: 70, output_tokens: 12 });

    const [row] = await ledgerRows(proxy);
    expect(row).toMatchObject({ group: 'alice', requests: 1, inputTokens: 40 + 300 + 70, cachedTokens: 300, outputTokens: 12, totalTokens: 410 + 12 });
    expect(row?.costMicros).toBe(costOf({ uncached: 40, read: 300, written: 70, output: 12 }));
    expect(await quotaUsage(proxy)).toEqual({ usage: 422, reserved: 0 });
  });

  it("a stream is charged each cache class at its own shipped price: 5-minute writes 1.25×, 1-hour writes 2×, reads 0.1× the input", async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 10, usage: { input_tokens: 1_000, cache_read_input_tokens: 20_000, cache_creation_5m: 4_000, cache_creation_1h: 2_000 } });
    const final = await proxy.client(proxy.alice.secret).messages.stream({ model: MODEL, max_tokens: 100, messages: ask('hi') }).finalMessage();
    expect(final.usage.cache_creation_input_tokens).toBe(6_000);
    const [row] = await ledgerRows(proxy);
    expect(row).toMatchObject({ inputTokens: 27_000, cachedTokens: 20_000, cacheWriteTokens: 6_000, outputTokens: 10 });
    // Claude Sonnet 4.5 list prices per 1M: $3 input, $3.75 5-minute write, $6 1-hour write, $0.30 read, $15 output.
    expect(row?.costMicros).toBe(1_000 * 3 + 4_000 * 3.75 + 2_000 * 6 + 20_000 * 0.3 + 10 * 15);
    // The admin's usage report shows the cache writes beside the reads, as JSON and CSV.
    const report = (await (await proxy.svc.admin('GET', '/admin/usage?groupBy=model&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z')).json()) as { rows: unknown[] };
    expect(report.rows).toEqual([expect.objectContaining({ model: MODEL, inputTokens: 27_000, cachedTokens: 20_000, cacheWriteTokens: 6_000 })]);
    const csv = await (await proxy.svc.admin('GET', '/admin/usage?groupBy=model&format=csv&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z')).text();
    expect(csv.split('\r\n')[1]).toBe(`${MODEL},1,27000,10,20000,6000,0,27010,0.036150,0,0,0.000000`);
  });

  it('a stream of thinking, text and a tool call is relayed whole and charged on message_start and message_delta together', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    proxy.fake.enqueue({
      kind: 'reply',
      thinkingTokens: 5,
      outputTokens: 7,
      toolUse: { name: 'check_quota', input: ['{"loc', 'ale":', '"en"}'] },
      usage: { cache_read_input_tokens: 1_000, cache_creation_1h: 200 },
      pingEvery: 3,
    });
    const client = proxy.client(proxy.alice.secret);
    const stream = client.messages.stream({ model: MODEL, max_tokens: 64_000, messages: ask('Think, then call the tool.') });
    const final = await stream.finalMessage();
    expect(final.content.map((b) => b.type)).toEqual(['thinking', 'text', 'tool_use']);
    expect(final.content[1]).toMatchObject({ type: 'text', text: ' hi'.repeat(7) });
    expect(final.content[2]).toMatchObject({ type: 'tool_use', name: 'check_quota', input: { locale: 'en' } });
    expect(final.stop_reason).toBe('tool_use');
    const input = inputTokensOf(proxy.fake.requests[0]?.body);
    expect(final.usage).toMatchObject({ input_tokens: input, output_tokens: 15, cache_read_input_tokens: 1_000, cache_creation_input_tokens: 200 });

    const [row] = await ledgerRows(proxy);
    expect(row).toMatchObject({ requests: 1, inputTokens: input + 1_200, cachedTokens: 1_000, outputTokens: 15 });
    expect(row?.costMicros).toBe(costOf({ uncached: input, read: 1_000, written: 200, output: 15 }));
    expect(await quotaUsage(proxy)).toEqual({ usage: input + 1_215, reserved: 0 });
  });

  it("clamps LobeChat's max_tokens of 64,000 to the budget's room, shrinking a thinking budget that would not fit under it", async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(3_000)], config });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 3 });
    const client = proxy.client(proxy.alice.secret);
    await client.messages.create({ model: MODEL, max_tokens: 64_000, thinking: { type: 'enabled', budget_tokens: 10_000 }, messages: ask('hi') });
    const sent = proxy.fake.requests[0]?.body as { max_tokens: number; thinking: { budget_tokens: number } };
    expect(sent.max_tokens).toBeLessThan(3_000);
    expect(sent.max_tokens).toBeGreaterThan(1_024);
    expect(sent.thinking.budget_tokens).toBe(sent.max_tokens - 1);
  });

  it('cuts an upstream that ignores max_tokens at the budget, ending the stream as Anthropic ends one at max_tokens', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(400)], config });
    const body = { model: MODEL, max_tokens: 64_000, messages: ask('Go on forever.') };
    // The upstream reports the prompt as the proxy counted it: the budget's edge is then exact.
    const input = countPromptWith(createTokenCounter(), { kind: 'anthropic', model: MODEL, body });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 2_000, ignoreMaxTokens: true, usage: { input_tokens: input } });
    const client = proxy.client(proxy.alice.secret);
    const stream = client.messages.stream(body);
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe('max_tokens');
    const text = final.content[0]?.type === 'text' ? final.content[0].text : '';
    const delivered = text.length / ' hi'.length;
    expect(delivered).toBeGreaterThan(0);

    const [row] = await ledgerRows(proxy);
    // The prompt as the upstream reported it in message_start, the output as delivered.
    expect(row).toMatchObject({ requests: 1, inputTokens: input, outputTokens: final.usage.output_tokens });
    expect(row?.totalTokens).toBeLessThanOrEqual(400);
    expect(row?.totalTokens).toBeGreaterThan(350);
    expect(final.usage.output_tokens).toBeGreaterThanOrEqual(delivered);
    expect(await quotaUsage(proxy)).toEqual({ usage: row?.totalTokens, reserved: 0 });
  });

  it("refuses a spent budget with Anthropic's 429 rate_limit_error naming the budget, which the SDK does not retry", async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(50)], config });
    const client = proxy.client(proxy.alice.secret, { maxRetries: 3 });
    const error = await client.messages.create({ model: MODEL, max_tokens: 100, messages: ask('x'.repeat(400)) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    const e = error as InstanceType<typeof Anthropic.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(e.message).toContain('user:alice');
    expect(e.headers?.get('x-should-retry')).toBe('false');
    expect(client.calls()).toBe(1);
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it("sends the upstream its own key and the client's API version, never the user's key", async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    const client = proxy.client(proxy.alice.secret);
    await client.messages.create({ model: MODEL, max_tokens: 50, messages: ask('hi') });
    await client.messages.stream({ model: MODEL, max_tokens: 50, messages: ask('hi') }).finalMessage();
    expect(proxy.fake.requests).toHaveLength(2);
    for (const request of proxy.fake.requests) {
      expect(request.apiKey).toBe(ANTHROPIC_UPSTREAM_KEY);
      expect(request.anthropicVersion).toBe('2023-06-01');
      expect(JSON.stringify(request.headers)).not.toContain(proxy.alice.secret);
      expect(request.rawBody).not.toContain(proxy.alice.secret);
    }
  });

  it('takes the key as x-api-key or as a bearer token, and answers a missing or wrong one with 401 in Anthropic\'s shape', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    const bearer = new Anthropic({ baseURL: proxy.url, authToken: proxy.alice.secret, apiKey: null, maxRetries: 0 });
    await expect(bearer.messages.create({ model: MODEL, max_tokens: 10, messages: ask('hi') })).resolves.toMatchObject({ type: 'message' });

    const wrong = await proxy.client('lq-not-a-key').messages.create({ model: MODEL, max_tokens: 10, messages: ask('hi') }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((wrong as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });

    const none = await fetch(`${proxy.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: expect.stringContaining('x-api-key: lq-') } });
    expect(proxy.fake.requests).toHaveLength(1);
  });

  it('answers a model no Anthropic upstream serves with 404 in its shape, naming the format that does serve it', async () => {
    proxy = await startAnthropicProxy({
      defaultBudgets: [monthlyUserTokens(100_000)],
      config: { ...config, upstreams: [] },
    });
    proxy.svc.upstreams.list.push(...(await import('./upstreams.js')).Upstreams.fromConfig({
      upstreams: [
        { name: 'anthropic', api: 'anthropic', baseUrl: proxy.fake.baseUrl, apiKey: ANTHROPIC_UPSTREAM_KEY, models: ['claude-*'] },
        { name: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk', models: ['gpt-*'] },
      ],
      proxy: proxy.svc.config.proxy,
    }).list);
    const client = proxy.client(proxy.alice.secret);
    const error = await client.messages.create({ model: 'gpt-4o', max_tokens: 10, messages: ask('hi') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect((error as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error', message: expect.stringContaining('through the OpenAI API, not the Anthropic Messages API') },
    });
  });

  it('rejects a request without max_tokens with 400 invalid_request_error naming the field', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    const response = await fetch(`${proxy.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': proxy.alice.secret, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: MODEL, messages: ask('hi') }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it("passes count_tokens to the upstream unmetered, with the upstream's key", async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    const client = proxy.client(proxy.alice.secret);
    const counted = await client.messages.countTokens({ model: MODEL, messages: ask('How many tokens is this?') });
    expect(counted.input_tokens).toBe(inputTokensOf(proxy.fake.requests[0]?.body));
    expect(proxy.fake.requests[0]).toMatchObject({ path: '/v1/messages/count_tokens', apiKey: ANTHROPIC_UPSTREAM_KEY });
    expect(await ledgerRows(proxy)).toEqual([]);
  });

  it('lets a service key name the payer in metadata.user_id, as LobeChat fills it', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    await proxy.svc.admin('POST', '/admin/users', { id: 'lobechat' });
    const created = await proxy.svc.admin('POST', '/admin/keys', { userId: 'lobechat', service: true });
    const client = proxy.client(((await created.json()) as { key: string }).key);
    await client.messages.create({ model: MODEL, max_tokens: 10, metadata: { user_id: 'alice' }, messages: ask('hi') });
    const rows = await ledgerRows(proxy);
    expect(rows.map((r) => r.group)).toEqual(['alice']);
  });

  it('60 concurrent streams of 500 tokens share a 20,000-token budget: never over, at least 18,000 served', async () => {
    // The fake counts a " hi" as one token, as o200k_base does: the proxy is given an estimate that
    // counts as the upstream does, so the scenario measures concurrency, not Claude's safety factor
    // (whose cost estimates.test.ts shows).
    const counter = countingAsTheFakes();
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(20_000)], config, tokens: counter });
    const body = (i: number) => ({ model: MODEL, max_tokens: 64_000, messages: ask(`Tell story number ${i}.`) });
    // The upstream reports the prompt as the proxy counts it, so ledger and clients compare token for token.
    for (let i = 0; i < 60; i++) {
      proxy.fake.enqueue({ kind: 'reply', outputTokens: 500, chunkDelayMs: 1, usage: { input_tokens: countPromptWith(counter, { kind: 'anthropic', model: MODEL, body: body(i) }) } });
    }
    const client = proxy.client(proxy.alice.secret);
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        try {
          const final = await client.messages.stream(body(i)).finalMessage();
          const text = final.content[0]?.type === 'text' ? final.content[0].text : '';
          return { pieces: text.length / ' hi'.length, stop: final.stop_reason, refused: false };
        } catch (error) {
          if (error instanceof Anthropic.RateLimitError) return { pieces: 0, stop: null, refused: true };
          throw error;
        }
      }),
    );
    const rows = await ledgerRows(proxy);
    const total = rows.reduce((sum, r) => sum + r.totalTokens, 0);
    const served = outcomes.reduce((sum, o) => sum + o.pieces, 0);
    expect(total).toBeLessThanOrEqual(20_000);
    expect(total).toBeGreaterThanOrEqual(18_000);
    expect(rows.reduce((sum, r) => sum + r.outputTokens, 0)).toBe(served);
    expect(outcomes.filter((o) => o.stop === 'end_turn').length).toBeGreaterThan(0);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
    expect((await quotaUsage(proxy)).usage).toBe(total);
  });

  it('with proxy.streamWholeAnswers, a whole answer is metered as a stream and assembled into the message the SDK expects', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config: { ...config, proxy: { ...testConfig().proxy, streamWholeAnswers: true } } });
    proxy.fake.enqueue({ kind: 'reply', thinkingTokens: 2, outputTokens: 4, toolUse: { name: 'lookup', input: ['{"q":', '"x"}'] }, usage: { cache_creation_1h: 30 } });
    const client = proxy.client(proxy.alice.secret);
    const message = await client.messages.create({ model: MODEL, max_tokens: 500, messages: ask('hi') });
    expect((proxy.fake.requests[0]?.body as { stream?: boolean }).stream).toBe(true);
    expect(message.content.map((b) => b.type)).toEqual(['thinking', 'text', 'tool_use']);
    expect(message.content[2]).toMatchObject({ name: 'lookup', input: { q: 'x' } });
    expect(message).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'tool_use' });
    const input = inputTokensOf(proxy.fake.requests[0]?.body);
    expect(message.usage).toMatchObject({ input_tokens: input, cache_creation_input_tokens: 30, output_tokens: 8 });
    const [row] = await ledgerRows(proxy);
    expect(row).toMatchObject({ inputTokens: input + 30, outputTokens: 8 });
  });

  it('with refusalStyle "answer", a refusal is the assistant\'s message, streamed or whole, and the SDK reads it as one', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(50)], config: { ...config, proxy: { ...testConfig().proxy, refusalStyle: 'answer' } } });
    const client = proxy.client(proxy.alice.secret);
    const whole = await client.messages.create({ model: MODEL, max_tokens: 100, messages: ask('x'.repeat(400)) });
    expect(whole.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('user:alice') });
    const streamed = await client.messages.stream({ model: MODEL, max_tokens: 100, messages: ask('x'.repeat(400)) }).finalMessage();
    expect(streamed.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('user:alice') });
    expect(streamed.stop_reason).toBe('end_turn');
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it("passes the upstream's own errors through in its shape and charges nothing; its 401 becomes a 502 of ours", async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    proxy.fake.enqueue({ kind: 'error', type: 'overloaded_error' }, { kind: 'error', type: 'authentication_error' });
    const client = proxy.client(proxy.alice.secret);
    const overloaded = await client.messages.create({ model: MODEL, max_tokens: 10, messages: ask('hi') }).catch((e: unknown) => e);
    expect(overloaded).toMatchObject({ status: 529, error: { type: 'error', error: { type: 'overloaded_error' } } });
    const auth = await client.messages.create({ model: MODEL, max_tokens: 10, messages: ask('hi') }).catch((e: unknown) => e);
    expect(auth).toMatchObject({ status: 502, error: { type: 'error', error: { type: 'api_error', message: expect.stringContaining("lobe-quota's own key") } } });
    expect(await ledgerRows(proxy)).toEqual([]);
    expect(await quotaUsage(proxy)).toEqual({ usage: 0, reserved: 0 });
  });

  it('an error event mid-stream reaches the SDK as an error, and what was delivered is charged', async () => {
    proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
    proxy.fake.enqueue({ kind: 'stream-error', afterPieces: 4, type: 'overloaded_error' });
    const client = proxy.client(proxy.alice.secret);
    const error = await client.messages.stream({ model: MODEL, max_tokens: 100, messages: ask('hi') }).finalMessage().catch((e: unknown) => e);
    expect(String(error)).toContain('Overloaded');
    await eventually(async () => (await ledgerRows(proxy!)).length === 1);
    const [row] = await ledgerRows(proxy);
    // Four " hi" pieces delivered, charged on the proxy's (safe-side) count for Claude.
    const delivered = createTokenCounter().outputCounter(MODEL)([' hi', ' hi', ' hi', ' hi']);
    expect(delivered).toBeGreaterThanOrEqual(4);
    expect(row).toMatchObject({ inputTokens: inputTokensOf(proxy.fake.requests[0]?.body), outputTokens: delivered });
  });

  it("lists the Anthropic upstreams' models in Anthropic's shape to a request with anthropic-version, as LobeChat fetches them", async () => {
    proxy = await startAnthropicProxy({ config: { ...config, upstreams: [] } });
    const { Upstreams } = await import('./upstreams.js');
    proxy.svc.upstreams.list.push(
      ...Upstreams.fromConfig({
        upstreams: [
          { name: 'anthropic', api: 'anthropic', baseUrl: proxy.fake.baseUrl, apiKey: ANTHROPIC_UPSTREAM_KEY, models: ['claude-sonnet-*', 'claude-haiku-*'] },
          { name: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk', models: ['gpt-*'] },
        ],
        proxy: proxy.svc.config.proxy,
      }).list,
    );
    const client = proxy.client(proxy.alice.secret);
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['claude-haiku-4-5-20251001', 'claude-sonnet-4-5-20250929']);
    // LobeChat's own request (anthropicCompatibleFactory's model list): fetch with these two headers.
    const response = await fetch(`${proxy.url}/v1/models`, { headers: { 'anthropic-version': '2023-06-01', 'x-api-key': proxy.alice.secret } });
    const list = (await response.json()) as { data: Array<{ id: string; display_name: string; type: string }>; has_more: boolean };
    expect(list.has_more).toBe(false);
    expect(list.data[0]).toMatchObject({ type: 'model', id: 'claude-haiku-4-5-20251001', display_name: 'claude-haiku-4-5' });
    expect(proxy.fake.requests.every((r) => r.apiKey === ANTHROPIC_UPSTREAM_KEY)).toBe(true);
    // OpenAI's list (LobeChat's New API provider reads it) has them too, marked as served in Anthropic's API.
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: proxy.alice.secret, maxRetries: 0 });
    const page = await openai.models.list();
    expect(page.data.find((m) => m.id === 'claude-haiku-4-5-20251001')).toEqual({
      id: 'claude-haiku-4-5-20251001',
      object: 'model',
      created: Date.parse('2025-09-01T00:00:00Z') / 1000,
      owned_by: 'anthropic',
      supported_endpoint_types: ['anthropic'],
    });
    const denied = await fetch(`${proxy.url}/v1/models`, { headers: { 'anthropic-version': '2023-06-01', 'x-api-key': 'lq-wrong' } });
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it("serves one model in two formats from two upstreams: each request goes to the upstream of its own format", async () => {
    // LobeChat's New API router sends a Claude alias it does not know natively as Chat Completions:
    // a deployment serves claude-* natively and through Anthropic's OpenAI-compatible endpoint.
    const compatible = await startFakeOpenAI();
    try {
      proxy = await startAnthropicProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config });
      const { Upstreams } = await import('./upstreams.js');
      proxy.svc.upstreams.list.push(
        ...Upstreams.fromConfig({ upstreams: [{ name: 'anthropic-openai', baseUrl: compatible.baseUrl, apiKey: 'sk-compat', models: ['claude-*'] }], proxy: proxy.svc.config.proxy }).list,
      );
      await proxy.client(proxy.alice.secret).messages.create({ model: MODEL, max_tokens: 10, messages: ask('native') });
      const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: proxy.alice.secret, maxRetries: 0 });
      await openai.chat.completions.create({ model: MODEL, messages: ask('compatible') });
      expect(proxy.fake.requests.map((r) => r.path)).toEqual(['/v1/messages']);
      expect(compatible.requests.map((r) => [r.path, r.apiKey])).toEqual([['/v1/chat/completions', 'sk-compat']]);
      const rows = await ledgerRows(proxy);
      expect(rows[0]?.requests).toBe(2);
    } finally {
      await compatible.close();
    }
  });

  it("quotes a prompt marked for caching at the cache-write price, so a dollar budget is not overspent by the write surcharge", async () => {
    const text = 'Summarise the quarterly report. '.repeat(60);
    const body = (cacheControl?: { type: 'ephemeral'; ttl?: '5m' | '1h' }) => ({
      model: MODEL,
      max_tokens: 1,
      system: [{ type: 'text' as const, text, ...(cacheControl ? { cache_control: cacheControl } : {}) }],
      messages: ask('Go.'),
    });
    // Counted as lobe-quota counts it (Claude's safe-side estimate): Sonnet 4.5 bills $3 per 1M
    // input tokens, $3.75 for a 5-minute write, $6 for an hour's, $15 per 1M output tokens.
    const prompt = countPromptWith(createTokenCounter(), { kind: 'anthropic', model: MODEL, body: body() });
    const limitUsd = (prompt * 4.5 + 15) / 1e6; // room for the prompt at $4.50 per 1M and one output token
    const dollars = { scope: 'user' as const, window: { kind: 'month' as const, timeZone: 'UTC' }, limitTokens: null, limitUsd, onLimit: 'reject' as const };
    proxy = await startAnthropicProxy({ defaultBudgets: [dollars] });
    const client = proxy.client(proxy.alice.secret);
    const hour = await client.messages.create(body({ type: 'ephemeral', ttl: '1h' })).catch((e: unknown) => e);
    expect(hour).toBeInstanceOf(Anthropic.RateLimitError);
    expect(proxy.fake.requests).toHaveLength(0);
    // The same prompt written for 5 minutes ($3.75), or not cached at all ($3), fits.
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 1, usage: { input_tokens: 0, cache_creation_5m: prompt } }, { kind: 'reply', outputTokens: 1, usage: { input_tokens: 0 } });
    await expect(client.messages.create(body({ type: 'ephemeral' }))).resolves.toMatchObject({ type: 'message' });
    expect(proxy.fake.requests).toHaveLength(1);
  });
});
