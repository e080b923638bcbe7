import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../config/load.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import type { LedgerEntry } from '../store/types.js';
import { startAnthropicProxy, type AnthropicProxy } from '../testing/anthropic-harness.js';
import { startOllamaProxy, type OllamaProxyHarness } from '../testing/ollama-proxy-harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

let proxy: ProxyHarness | AnthropicProxy | OllamaProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const cacheConfig = (overrides: Partial<Config['cache']> = {}): Partial<Config> => ({
  cache: { enabled: true, scope: 'user', ttlSeconds: 3_600, maxMegabytes: 16, chargeFraction: 0, ...overrides },
});

const question = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content: 'Name three marsupials.' }] };

/** The newest ledger entries, oldest first. */
const entries = async (p: ProxyHarness | AnthropicProxy | OllamaProxyHarness, n: number): Promise<LedgerEntry[]> => (await p.svc.store.recentEntries(n)).reverse();

describe('the response cache, through the official openai SDK', () => {
  it('whole answers: the second identical request is answered from the cache, byte for byte, free, and recorded as saved', async () => {
    const p = (proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config: cacheConfig() }));
    p.fake.enqueue({ kind: 'reply', text: [' Koala', ',', ' wombat', ',', ' quokka'] });
    const client = p.client(p.alice.secret);

    const first = await client.chat.completions.create(question).asResponse();
    const second = await client.chat.completions.create(question).asResponse();
    expect([first.headers.get('x-quota-cache'), second.headers.get('x-quota-cache')]).toEqual(['miss', 'hit']);
    const firstBody = await first.text();
    expect(await second.text()).toBe(firstBody);
    expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(p.fake.requests).toHaveLength(1);
    // The SDK reads the hit as any answer.
    const parsed = await client.chat.completions.create(question);
    expect(parsed.choices[0]?.message.content).toBe(' Koala, wombat, quokka');
    expect(p.fake.requests).toHaveLength(1);

    const [upstream, hit] = await entries(p, 3);
    expect(upstream).toMatchObject({ source: 'upstream', savedTokens: 0 });
    const firstTokens = (upstream?.inputTokens ?? 0) + (upstream?.outputTokens ?? 0);
    expect(hit).toMatchObject({ source: 'cache', outcome: 'ok', model: 'gpt-4o-mini', inputTokens: 0, outputTokens: 0, costMicros: 0, savedTokens: firstTokens, savedMicros: upstream?.costMicros });
    // The budget counts the upstream answer only; the hit's headers say so.
    expect(second.headers.get('x-quota-remaining')).toBe(String(100_000 - firstTokens));
  });

  it('streams: a hit replays the stored stream with its content type, charged its fraction (rounded up) and admitted against the budget', async () => {
    const p = (proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)], config: cacheConfig({ chargeFraction: 0.25 }) }));
    p.fake.enqueue({ kind: 'reply', outputTokens: 9 });
    const client = p.client(p.alice.secret);
    const streamed = { ...question, stream: true as const, stream_options: { include_usage: true } };

    const first = await client.chat.completions.create(streamed).asResponse();
    const firstText = await first.text();
    const second = await client.chat.completions.create(streamed).asResponse();
    expect(second.headers.get('x-quota-cache')).toBe('hit');
    expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(await second.text()).toBe(firstText);
    expect(firstText).toMatch(/data: \[DONE\]\n\n$/);
    let text = '';
    for await (const chunk of await client.chat.completions.create(streamed)) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(' hi'.repeat(9));
    expect(p.fake.requests).toHaveLength(1);

    // The whole answer to the same body is another entry: its bytes differ.
    await client.chat.completions.create(question);
    expect(p.fake.requests).toHaveLength(2);

    const [upstream, hit] = await entries(p, 4);
    const input = upstream?.inputTokens ?? 0;
    const cost = upstream?.costMicros ?? 0;
    expect(hit).toMatchObject({
      source: 'cache',
      inputTokens: Math.ceil(input / 4),
      outputTokens: Math.ceil(9 / 4),
      costMicros: Math.ceil(cost / 4),
      savedTokens: input + 9 - Math.ceil(input / 4) - Math.ceil(9 / 4),
      savedMicros: cost - Math.ceil(cost / 4),
    });
    expect(await p.svc.store.listHolds()).toEqual([]);
    const status = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { usage: number };
    const charged = (await entries(p, 4)).reduce((sum, e) => sum + e.inputTokens + e.outputTokens, 0);
    expect(status.usage).toBe(charged);
  });

  it('X-Quota-Cache: off bypasses the cache (no lookup, no store); a sampled request is cached only with X-Quota-Cache: on', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig() }));
    const client = p.client(p.alice.secret);
    const off = { headers: { 'X-Quota-Cache': 'off' } };
    const a = await client.chat.completions.create(question, off).asResponse();
    const b = await client.chat.completions.create(question, off).asResponse();
    expect([a.headers.get('x-quota-cache'), b.headers.get('x-quota-cache')]).toEqual([null, null]);
    expect(p.fake.requests).toHaveLength(2);
    // Nothing was stored by those two: the next one misses.
    expect((await client.chat.completions.create(question).asResponse()).headers.get('x-quota-cache')).toBe('miss');
    expect(p.fake.requests).toHaveLength(3);

    // No temperature is the API's default, 1: not cached, not even looked up.
    const sampled = { model: 'gpt-4o-mini', messages: question.messages };
    for (const _ of [1, 2]) expect((await client.chat.completions.create(sampled).asResponse()).headers.get('x-quota-cache')).toBeNull();
    const hot = { ...question, temperature: 0.7 };
    await client.chat.completions.create(hot);
    await client.chat.completions.create(hot);
    expect(p.fake.requests).toHaveLength(7);
    const optIn = { headers: { 'X-Quota-Cache': 'on' } };
    await client.chat.completions.create(hot, optIn);
    expect((await client.chat.completions.create(hot, optIn).asResponse()).headers.get('x-quota-cache')).toBe('hit');
    expect(p.fake.requests).toHaveLength(8);
  });

  it('forgets an answer after ttlSeconds (a fixed clock), then stores the next one again', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig({ ttlSeconds: 60 }) }));
    const client = p.client(p.alice.secret);
    await client.chat.completions.create(question);
    p.svc.clock.advance(59_000);
    expect((await client.chat.completions.create(question).asResponse()).headers.get('x-quota-cache')).toBe('hit');
    p.svc.clock.advance(1_000);
    expect((await client.chat.completions.create(question).asResponse()).headers.get('x-quota-cache')).toBe('miss');
    expect((await client.chat.completions.create(question).asResponse()).headers.get('x-quota-cache')).toBe('hit');
    expect(p.fake.requests).toHaveLength(2);
  });

  it.each([
    [0, 'served free', 'hit'],
    [0.5, 'refused as any request is', null],
  ] as const)('with the budget spent, a hit charged %d of the first answer is %s', async (chargeFraction, _label, header) => {
    const p = (proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(60)], config: cacheConfig({ chargeFraction }) }));
    p.fake.enqueue({ kind: 'reply', outputTokens: 40 });
    const client = p.client(p.alice.secret);
    await client.chat.completions.create(question);
    // The budget is now spent (the prompt and 40 output tokens, of 60).
    const other = { ...question, messages: [{ role: 'user' as const, content: 'Something else.' }] };
    await expect(client.chat.completions.create(other)).rejects.toMatchObject({ status: 429 });
    if (header === 'hit') expect((await client.chat.completions.create(question).asResponse()).headers.get('x-quota-cache')).toBe('hit');
    else await expect(client.chat.completions.create(question)).rejects.toMatchObject({ status: 429 });
    expect(p.fake.requests).toHaveLength(1);
  });

  it('usage reports count the hits and what they saved, in JSON and CSV', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig() }));
    const client = p.client(p.alice.secret);
    for (const _ of [1, 2, 3]) await client.chat.completions.create(question);
    const [upstream] = await entries(p, 3);
    const tokens = (upstream?.inputTokens ?? 0) + (upstream?.outputTokens ?? 0);
    const range = 'from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z';
    const json = (await (await p.svc.admin('GET', `/admin/usage?groupBy=user&${range}`)).json()) as { rows: Array<Record<string, unknown>>; totals: Record<string, unknown> };
    expect(json.rows[0]).toMatchObject({ user: 'alice', requests: 3, totalTokens: tokens, cacheHits: 2, savedTokens: 2 * tokens, savedUsd: (2 * (upstream?.costMicros ?? 0)) / 1e6 });
    expect(json.totals).toMatchObject({ cacheHits: 2, savedTokens: 2 * tokens });
    const csv = (await (await p.svc.admin('GET', `/admin/usage?groupBy=user&format=csv&${range}`)).text()).split('\r\n');
    expect(csv[0]).toMatch(/,cost_usd,cache_hits,saved_tokens,saved_usd$/);
    expect(csv[1]).toMatch(new RegExp(`^alice,3,.*,2,${2 * tokens},${((2 * (upstream?.costMicros ?? 0)) / 1e6).toFixed(6)}$`));
    const metrics = await (await p.svc.admin('GET', '/metrics')).text();
    expect(metrics).toContain('lobe_quota_response_cache_lookups_total{result="hit"} 2');
    expect(metrics).toContain('lobe_quota_response_cache_lookups_total{result="miss"} 1');
    expect(metrics).toContain(`lobe_quota_response_cache_saved_tokens_total ${2 * tokens}`);
  });
});

describe('the response cache, through the official Anthropic SDK', () => {
  it('answers a repeated Messages request from the cache, whole and streamed, in Anthropic’s format', async () => {
    const p = (proxy = await startAnthropicProxy({ config: cacheConfig() }));
    const client = p.client(p.alice.secret);
    const ask = { model: 'claude-sonnet-4-5', max_tokens: 200, temperature: 0, messages: [{ role: 'user' as const, content: 'Name a marsupial.' }] };

    const first = await client.messages.create(ask).asResponse();
    const firstBody = await first.text();
    const second = await client.messages.create(ask).asResponse();
    expect(second.headers.get('x-quota-cache')).toBe('hit');
    expect(await second.text()).toBe(firstBody);
    const message = await client.messages.create(ask);
    expect(message.type).toBe('message');

    const streamFirst = await client.messages.create({ ...ask, stream: true }).asResponse();
    const streamText = await streamFirst.text();
    const streamSecond = await client.messages.create({ ...ask, stream: true }).asResponse();
    expect(streamSecond.headers.get('x-quota-cache')).toBe('hit');
    expect(streamSecond.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await streamSecond.text()).toBe(streamText);
    const events: string[] = [];
    for await (const event of await client.messages.create({ ...ask, stream: true })) events.push(event.type);
    expect(events.at(-1)).toBe('message_stop');
    expect(p.fake.requests).toHaveLength(2);
    const hits = (await entries(p, 10)).filter((e) => e.source === 'cache');
    expect(hits).toHaveLength(4);
    expect(hits.every((e) => e.model === 'claude-sonnet-4-5' && e.costMicros === 0 && (e.savedMicros ?? 0) > 0)).toBe(true);
  });
});

describe('the response cache, through the ollama package', () => {
  it('replays an NDJSON stream as application/x-ndjson, line for line', async () => {
    const p = (proxy = await startOllamaProxy({ config: cacheConfig() }));
    const body = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'Say hi' }], options: { temperature: 0 } });
    const post = () => fetch(`${p.url}/ollama/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${p.alice.secret}` }, body });
    const first = await post();
    const firstText = await first.text();
    const second = await post();
    expect(second.headers.get('x-quota-cache')).toBe('hit');
    expect(second.headers.get('content-type')).toBe('application/x-ndjson');
    expect(await second.text()).toBe(firstText);
    let text = '';
    for await (const part of await p.client(p.alice.secret).chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'Say hi' }], options: { temperature: 0 }, stream: true })) {
      text += part.message.content;
    }
    expect(text).toBe(' hi'.repeat(20));
    expect(p.fake.requests).toHaveLength(1);
  });
});
