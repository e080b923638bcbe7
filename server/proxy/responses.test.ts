import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { type APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { promptTokensOf, waitFor } from '../testing/fake-openai.js';
import { eventually, testConfig } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { createTokenCounter } from './token-count.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const input = 'Say hi a few times.';
const instructions = 'You are terse.';

async function ledger(p: ProxyHarness) {
  return p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
}

async function quota(p: ProxyHarness) {
  return (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { usage: number; budgets: Array<{ reservedTokens: number; usedTokens: number }> };
}

describe('POST /v1/responses through the official openai SDK', () => {
  it('non-streaming: passes the answer through and charges exactly the upstream usage', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 12, reasoningTokens: 3, usage: { cached_tokens: 4 } });
    const client = proxy.client(proxy.alice.secret);
    const response = await client.responses.create({ model: 'gpt-4o-mini', input, instructions });
    expect(response.output_text).toBe(' hi'.repeat(12));
    const prompt = promptTokensOf(proxy.fake.requests[0]?.body);
    expect(response.usage).toMatchObject({ input_tokens: prompt, output_tokens: 15, output_tokens_details: { reasoning_tokens: 3 } });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ model: 'gpt-4o-mini', input, instructions });

    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ group: 'alice', requests: 1, inputTokens: prompt, outputTokens: 15, cachedTokens: 4, reasoningTokens: 3, totalTokens: prompt + 15 });
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ source: 'upstream', outcome: 'ok', model: 'gpt-4o-mini' });
    const status = await quota(proxy);
    expect(status.usage).toBe(prompt + 15);
    expect(status.budgets[0]?.reservedTokens).toBe(0);
  });

  it('streaming: every event arrives unchanged, the ledger holds the upstream usage, no hold is left', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 30 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input, stream: true });
    const types: string[] = [];
    const sequence: number[] = [];
    let text = '';
    let usage: unknown = null;
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') usage = event.response.usage;
    }
    expect(text).toBe(' hi'.repeat(30));
    expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(types.at(-1)).toBe('response.completed');
    expect(sequence).toEqual(types.map((_, i) => i));
    const prompt = promptTokensOf(proxy.fake.requests[0]?.body);
    expect(usage).toMatchObject({ input_tokens: prompt, output_tokens: 30 });
    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ requests: 1, inputTokens: prompt, outputTokens: 30 });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('streaming with the SDK helper: the final response is the upstream one, settled before it arrives', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', text: ['Hel', 'lo'], usage: { prompt_tokens: 40, completion_tokens: 7 } });
    const client = proxy.client(proxy.alice.secret);
    const final = await client.responses.stream({ model: 'gpt-4o-mini', input }).finalResponse();
    expect(final.output_text).toBe('Hello');
    expect(final.usage).toMatchObject({ input_tokens: 40, output_tokens: 7 });
    // Settled before the last event was written, so the ledger already has it.
    expect((await ledger(proxy))[0]).toMatchObject({ inputTokens: 40, outputTokens: 7 });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('forwards max_output_tokens clamped to what the budget has left, and sets one only when the budget binds', async () => {
    const ours = (body: object) => createTokenCounter().countResponsesInput('gpt-4o-mini', body);
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const client = proxy.client(proxy.alice.secret);
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5 });
    await client.responses.create({ model: 'gpt-4o-mini', input, max_output_tokens: 4_000 });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ max_output_tokens: 1_000 - ours({ model: 'gpt-4o-mini', input, max_output_tokens: 4_000 }) });

    // A limit below the budget's room goes through as given.
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5 });
    await client.responses.create({ model: 'gpt-4o-mini', input, max_output_tokens: 50 });
    expect(proxy.fake.requests[1]?.body).toMatchObject({ max_output_tokens: 50 });

    // No limit given: the budget binds (its room is below gpt-4o-mini's output cap), so one is added.
    const used = promptTokensOf(proxy.fake.requests[0]?.body) + 5 + promptTokensOf(proxy.fake.requests[1]?.body) + 5;
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5 });
    await client.responses.create({ model: 'gpt-4o-mini', input });
    expect(proxy.fake.requests[2]?.body).toMatchObject({ max_output_tokens: 1_000 - used - ours({ model: 'gpt-4o-mini', input }) });
  });

  it('adds no max_output_tokens when the budget has room for the model’s whole output cap', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(10_000_000)] });
    await proxy.client(proxy.alice.secret).responses.create({ model: 'gpt-4o-mini', input });
    expect(proxy.fake.requests[0]?.body).not.toHaveProperty('max_output_tokens');
  });

  it('cuts a stream whose upstream ignores the limit at the budget, with a response.incomplete of its own', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(600)], config: { proxy: { ...testConfig().proxy, leaseTokens: 64 } } });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true, chunkDelayMs: 1 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'go on forever', stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const last = events.at(-1);
    expect(last?.type).toBe('response.incomplete');
    if (last?.type !== 'response.incomplete') throw new Error('unreachable');
    const delivered = events.filter((e) => e.type === 'response.output_text.delta').length;
    expect(delivered).toBeGreaterThan(0);
    expect(last.sequence_number).toBe((events.at(-2)?.sequence_number ?? -2) + 1);
    expect(last.response).toMatchObject({
      id: events[0]?.type === 'response.created' ? events[0].response.id : 'missing',
      object: 'response',
      model: 'gpt-4o-mini',
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      output: [],
      usage: { output_tokens: delivered },
    });

    const [row] = await ledger(proxy);
    expect(row?.totalTokens).toBeLessThanOrEqual(600);
    expect(row?.totalTokens).toBeGreaterThan(600 - 64);
    expect(row?.outputTokens).toBe(delivered);
    expect(last.response.usage?.input_tokens).toBe(row?.inputTokens);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ source: 'estimated', outcome: 'cut_off' });
    await waitFor(() => (proxy as ProxyHarness).fake.aborted === 1, 2_000, 'the upstream request to be aborted');
    expect(await proxy.svc.store.listHolds()).toEqual([]);
    expect((await quota(proxy)).usage).toBeLessThanOrEqual(600);
  });

  it('counts function-call argument deltas too, and cuts a runaway tool call at the budget', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(600)], config: { proxy: { ...testConfig().proxy, leaseTokens: 64 } } });
    proxy.fake.enqueue({ kind: 'reply', toolCall: { name: 'search', arguments: Array.from({ length: 5_000 }, () => ' hi') }, ignoreMaxTokens: true });
    const stream = await proxy.client(proxy.alice.secret).responses.create({ model: 'gpt-4o-mini', input, stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.at(-1)?.type).toBe('response.incomplete');
    const delivered = events.filter((e) => e.type === 'response.function_call_arguments.delta').length;
    const [row] = await ledger(proxy);
    expect(row?.outputTokens).toBe(delivered);
    expect(row?.totalTokens).toBeLessThanOrEqual(600);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('a stream that ends without response.completed tells the client and charges what it was sent', async () => {
    // An upstream that closes its stream cleanly after one delta, without a terminal event.
    const upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const response = { id: 'resp_1', object: 'response', created_at: 1, model: 'gpt-4o-mini', status: 'in_progress', output: [], usage: null };
        res.write(`event: response.created\ndata: ${JSON.stringify({ type: 'response.created', sequence_number: 0, response })}\n\n`);
        res.end(`event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta: ' hi' })}\n\n`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      const port = (upstream.address() as AddressInfo).port;
      proxy = await startProxy({
        defaultBudgets: [monthlyUserTokens(100_000)],
        config: { upstreams: [{ name: 'terse', baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: undefined, models: ['*'] }] },
      });
      const response = await fetch(`${proxy.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${proxy.alice.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', input, stream: true }),
      });
      const events = (await response.text()).split('\n\n').filter(Boolean);
      expect(events).toHaveLength(3);
      expect(events[2]).toMatch(/^event: error\ndata: /);
      const data = JSON.parse(events[2]?.replace(/^event: error\ndata: /, '') ?? '{}') as Record<string, unknown>;
      expect(data).toMatchObject({ type: 'error', sequence_number: 2, code: 'upstream_failed', error: { type: 'server_error', code: 'upstream_failed' } });
      const entries = await proxy.svc.store.recentEntries(10);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ outputTokens: 1, source: 'estimated', outcome: 'upstream_error' });
      expect(await proxy.svc.store.listHolds()).toEqual([]);
    } finally {
      await proxy?.close();
      proxy = undefined;
      upstream.closeAllConnections();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
  });

  it('an upstream 500 reaches the SDK as a 500; nothing is charged and no hold is left', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = proxy.client(proxy.alice.secret);
    proxy.fake.enqueue({ kind: 'error', status: 500 }, { kind: 'error', status: 500 });
    const whole = await client.responses.create({ model: 'gpt-4o-mini', input }).catch((e: unknown) => e);
    expect(whole).toBeInstanceOf(OpenAI.InternalServerError);
    expect((whole as APIError).status).toBe(500);
    const streamed = await client.responses.create({ model: 'gpt-4o-mini', input, stream: true }).catch((e: unknown) => e);
    expect((streamed as APIError).status).toBe(500);
    expect(await ledger(proxy)).toEqual([]);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
    expect((await quota(proxy)).usage).toBe(0);
  });

  it('an upstream that breaks off mid-stream: the SDK raises an error, the delivered deltas are charged', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'drop', afterPieces: 3 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input, stream: true });
    let deltas = 0;
    const error = await (async () => {
      for await (const event of stream) if (event.type === 'response.output_text.delta') deltas++;
    })().catch((e: unknown) => e);
    expect(deltas).toBe(3);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as APIError).message).toContain('broke off');
    const entries = await proxy.svc.store.recentEntries(10);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outputTokens: 3, source: 'estimated', outcome: 'upstream_error' });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('a client that leaves mid-stream is charged what it was sent', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 2_000, chunkDelayMs: 2 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input, stream: true });
    let received = 0;
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') received++;
      if (received === 10) break;
    }
    await waitFor(() => (proxy as ProxyHarness).fake.aborted === 1, 2_000, 'the upstream request to be aborted');
    const store = proxy.svc.store;
    await eventually(async () => (await store.listHolds()).length === 0, 2_000, 'the hold to be released');
    const [entry] = await store.recentEntries(1);
    expect(entry).toMatchObject({ outcome: 'client_abort', source: 'estimated' });
    expect(entry?.outputTokens).toBeGreaterThanOrEqual(10);
    expect(entry?.outputTokens).toBeLessThan(2_000);
  });

  it('refuses with 429 insufficient_quota once the budget is used up, without calling the upstream', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const client = proxy.client(proxy.alice.secret, { maxRetries: 2 });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5, usage: { prompt_tokens: 995 } });
    await client.responses.create({ model: 'gpt-4o-mini', input });
    expect((await quota(proxy)).usage).toBe(1_000);
    const error = await client.responses.create({ model: 'gpt-4o-mini', input }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as APIError).code).toBe('insufficient_quota');
    expect((error as APIError).status).toBe(429);
    expect(proxy.fake.requests).toHaveLength(1);
    expect(client.calls()).toBe(2);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('refuses with 429 rather than forward a max_output_tokens below the 16 OpenAI accepts', async () => {
    const prompt = createTokenCounter().countResponsesInput('gpt-4o-mini', { model: 'gpt-4o-mini', input });
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(prompt + 15)] });
    const error = (await proxy.client(proxy.alice.secret).responses.create({ model: 'gpt-4o-mini', input }).catch((e: unknown) => e)) as APIError;
    expect(error.status).toBe(429);
    expect(error.code).toBe('insufficient_quota');
    expect(proxy.fake.requests).toHaveLength(0);
    await proxy.close();
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(prompt + 16)] });
    await proxy.client(proxy.alice.secret).responses.create({ model: 'gpt-4o-mini', input });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ max_output_tokens: 16 });
  });

  it('answers bad input with an OpenAI-shaped 400 naming the field', async () => {
    proxy = await startProxy();
    const error = await proxy
      .client(proxy.alice.secret)
      .responses.create({ model: 'gpt-4o-mini', input, max_output_tokens: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as APIError).param).toBe('max_output_tokens');
    expect(proxy.fake.requests).toHaveLength(0);
  });
});
