import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, testConfig } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** A proxy whose alice has a 50-token monthly budget, with refusals answered as messages. */
async function answeringProxy(refusalStyle: 'answer' | 'error' = 'answer') {
  proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(50)], config: { proxy: { ...testConfig().proxy, refusalStyle } } });
  return proxy;
}

const TOO_BIG = [{ role: 'user' as const, content: 'x'.repeat(400) }];

/** The ledger's entries for alice, as reports and the dashboard read them. */
const ledger = (p: ProxyHarness) => p.svc.store.recentEntries(10);

function expectRefusalText(text: string | null | undefined) {
  expect(text).toMatch(/^⚠️ lobe-quota: This request does not fit in your lobe-quota budget user:alice: .* only 50 tokens remain .* It resets at 2026-12-01T00:00:00Z\.\n\nWhat you can do: wait for the reset, or ask your lobe-quota admin to raise the budget\./s);
}

describe('refusalStyle "answer": a refusal is the assistant\'s answer', () => {
  it('Chat Completions, whole: 200 with the refusal as the message, charged nothing, recorded as refused', async () => {
    const p = await answeringProxy();
    const { data, response } = await p.client(p.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages: TOO_BIG }).withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-quota-refused')).toBe('insufficient_quota');
    expect(response.headers.get('x-quota-remaining')).toBe('50');
    expect(response.headers.get('retry-after')).toBeNull();
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('gpt-4o-mini');
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.choices[0]?.message.role).toBe('assistant');
    expectRefusalText(data.choices[0]?.message.content);
    expect(data.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });

    expect(p.fake.requests).toHaveLength(0);
    const entries = await ledger(p);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ userId: 'alice', model: 'gpt-4o-mini', outcome: 'refused', inputTokens: 0, outputTokens: 0, costMicros: 0 });
    expect(await p.svc.store.listHolds()).toEqual([]);
  });

  it('Chat Completions, streamed: the SDK reads the refusal as deltas, with the usage chunk it asked for', async () => {
    const p = await answeringProxy();
    const stream = await p.client(p.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages: TOO_BIG, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const finishes: Array<string | null> = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        finishes.push(choice.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expectRefusalText(text);
    expect(finishes.at(-1)).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect((await ledger(p)).map((e) => e.outcome)).toEqual(['refused']);
  });

  it('Responses, whole: output_text is the refusal', async () => {
    const p = await answeringProxy();
    const { data, response } = await p.client(p.alice.secret).responses.create({ model: 'gpt-4o-mini', input: 'x'.repeat(400) }).withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-quota-refused')).toBe('insufficient_quota');
    expect(data.status).toBe('completed');
    expectRefusalText(data.output_text);
    expect(data.usage?.total_tokens).toBe(0);
    expect((await ledger(p)).map((e) => e.outcome)).toEqual(['refused']);
  });

  it('Responses, streamed: numbered events from response.created to response.completed, as the SDK expects', async () => {
    const p = await answeringProxy();
    const stream = p.client(p.alice.secret).responses.stream({ model: 'gpt-4o-mini', input: 'x'.repeat(400) });
    const types: string[] = [];
    const sequence: number[] = [];
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
    }
    const final = await stream.finalResponse();
    expectRefusalText(final.output_text);
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_text.delta');
    expect(types.at(-1)).toBe('response.completed');
    expect(sequence).toEqual(types.map((_, i) => i));
    expect((await ledger(p)).map((e) => e.outcome)).toEqual(['refused']);
  });

  it('answers a rate refusal too, saying when to try again', async () => {
    const h = await startProxy({ config: { proxy: { ...testConfig().proxy, refusalStyle: 'answer' }, rateLimits: { user: { requestsPerMinute: 1 } } } });
    proxy = h;
    const client = h.client(h.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(response.headers.get('x-quota-refused')).toBe('rate_limit_exceeded');
    expect(data.choices[0]?.message.content).toMatch(/^⚠️ lobe-quota: Rate limit reached for this user: 1 requests per minute\. Try again in \d+s\.$/);
    expect((await ledger(h)).map((e) => e.outcome)).toEqual(['refused', 'ok']);
  });

  it('leaves every other error an error: a bad request is still 400, an upstream error passes, embeddings still 429', async () => {
    const p = await answeringProxy();
    const client = p.client(p.alice.secret);
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: TOO_BIG, max_tokens: 0 })).rejects.toMatchObject({ status: 400 });
    p.fake.enqueue({ kind: 'error', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } } });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 400 });
    await expect(client.embeddings.create({ model: 'text-embedding-3-small', input: 'x'.repeat(400) })).rejects.toMatchObject({ status: 429, code: 'insufficient_quota' });
    expect(await ledger(p)).toEqual([]);
  });

  it('"error" (the default) keeps the 429 and records nothing', async () => {
    const p = await answeringProxy('error');
    await expect(p.client(p.alice.secret).responses.create({ model: 'gpt-4o-mini', input: 'x'.repeat(400) })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    expect(await ledger(p)).toEqual([]);
  });

  it("a key's own refusalStyle wins over the config's, both ways, and changes take effect at once", async () => {
    const p = await answeringProxy('error');
    const admin = (method: string, path: string, body: unknown) =>
      fetch(`${p.url}/admin${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const created = (await (await admin('POST', '/keys', { userId: 'alice', name: 'lobehub', refusalStyle: 'answer' })).json()) as { id: string; key: string };
    const client = p.client(created.key);

    const answered = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: TOO_BIG });
    expectRefusalText(answered.choices[0]?.message.content);
    // Her other key keeps the config's default.
    await expect(p.client(p.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages: TOO_BIG })).rejects.toMatchObject({ status: 429 });

    expect((await admin('PATCH', `/keys/${created.id}`, { refusalStyle: 'error' })).status).toBe(200);
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: TOO_BIG })).rejects.toMatchObject({ status: 429 });
    expect((await ledger(p)).map((e) => e.outcome)).toEqual(['refused']);
  });
});
