import { afterEach, describe, expect, it } from 'vitest';
import { promptTokensOf } from '../testing/fake-openai.js';
import { createTokenCounter } from './token-count.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say hi twenty times.' },
];

async function ledger(p: ProxyHarness) {
  const report = await p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
  return report;
}

describe('POST /v1/chat/completions through the official openai SDK', () => {
  it('non-streaming: answers as the upstream did and charges exactly the upstream usage', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 12, usage: { cached_tokens: 4, reasoning_tokens: 0 } });
    const client = proxy.client(proxy.alice.secret);
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(completion.choices[0]?.message.content).toBe(' hi'.repeat(12));
    const expectedPrompt = promptTokensOf(proxy.fake.requests[0]?.body);
    expect(completion.usage).toMatchObject({ prompt_tokens: expectedPrompt, completion_tokens: 12 });

    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ group: 'alice', requests: 1, inputTokens: expectedPrompt, outputTokens: 12, cachedTokens: 4, totalTokens: expectedPrompt + 12 });
    // gpt-4o-mini: $0.15 / 1M input, $0.075 / 1M cached input, $0.60 / 1M output, rounded up to a micro-dollar.
    expect(row?.costMicros).toBe(Math.ceil(((expectedPrompt - 4) * 0.15 + 4 * 0.075 + 12 * 0.6)));
    const status = (await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { usage: number; budgets: Array<{ reservedTokens: number }> };
    expect(status.usage).toBe(expectedPrompt + 12);
    expect(status.budgets[0]?.reservedTokens).toBe(0);
  });

  it('streaming with include_usage: the client gets the usage chunk, the ledger the upstream numbers', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 30 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(' hi'.repeat(30));
    const prompt = promptTokensOf(proxy.fake.requests[0]?.body);
    expect(usage).toMatchObject({ prompt_tokens: prompt, completion_tokens: 30 });
    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ requests: 1, inputTokens: prompt, outputTokens: 30 });
  });

  it('streaming without include_usage: usage is asked upstream but hidden from the client', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5 });
    const client = proxy.client(proxy.alice.secret);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(proxy.fake.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const [row] = await ledger(proxy);
    expect(row?.outputTokens).toBe(5);
  });

  it('forwards max_tokens clamped to what the budget has left, so the model stops there', async () => {
    const ourPromptCount = createTokenCounter().countChatPrompt('gpt-4o-mini', { model: 'gpt-4o-mini', messages, max_tokens: 4_000 });
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const client = proxy.client(proxy.alice.secret);
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 4_000 });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ max_tokens: 1_000 - ourPromptCount });
  });

  it('adds a limit for a request that gave none only when the budget binds', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const client = proxy.client(proxy.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(proxy.fake.requests[0]?.body).not.toHaveProperty('max_completion_tokens');
    expect(proxy.fake.requests[0]?.body).not.toHaveProperty('max_tokens');
    await proxy.svc.store.putBudget(
      { scope: { kind: 'user', id: 'alice' }, window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 2_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
      proxy.svc.clock.now(),
    );
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const ours = createTokenCounter().countChatPrompt('gpt-4o-mini', { model: 'gpt-4o-mini', messages });
    const usedByFirst = promptTokensOf(proxy.fake.requests[0]?.body) + 20;
    expect(proxy.fake.requests[1]?.body).toMatchObject({ max_completion_tokens: 2_000 - usedByFirst - ours });
  });

  it('counts reasoning and tool-call deltas itself when the upstream reports no usage', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const args = ['{"', 'city', '":"', 'Paris', '"}'];
    proxy.fake.enqueue({ kind: 'reply', reasoningTokens: 7, toolCall: { name: 'get_weather', arguments: args }, reportUsage: false });
    const client = proxy.client(proxy.alice.secret);
    const stream = client.chat.completions.stream({
      model: 'gpt-4o-mini',
      messages,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    const counter = createTokenCounter();
    const expected = 7 * counter.countText('gpt-4o-mini', ' hi') + counter.countText('gpt-4o-mini', 'get_weather') + args.reduce((n, a) => n + counter.countText('gpt-4o-mini', a), 0);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ source: 'estimated', outputTokens: expected, outcome: 'ok' });
  });

  it('a whole answer without usage is charged on our count of its text, never on "usage" look-alikes inside it', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    // The answer's text and tool arguments hold JSON that looks like usage; only a top-level field counts.
    const text = [' "usage":', '{"prompt_tokens":', '1,', '"completion_tokens":', '1}'];
    const args = ['{"usage":', '{"prompt_tokens":9}}'];
    proxy.fake.enqueue({ kind: 'reply', text, toolCall: { name: 'record', arguments: args }, reportUsage: false });
    const answer = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(answer.usage).toBeUndefined();
    expect(answer.choices[0]?.message.content).toBe(text.join(''));
    const counter = createTokenCounter();
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({
      source: 'estimated',
      inputTokens: counter.countChatPrompt('gpt-4o-mini', { model: 'gpt-4o-mini', messages }),
      outputTokens: counter.countText('gpt-4o-mini', text.join('')) + counter.countText('gpt-4o-mini', 'record') + counter.countText('gpt-4o-mini', args.join('')),
      outcome: 'ok',
    });
  });

  it('never sends the user’s key upstream, only the upstream’s own', async () => {
    proxy = await startProxy();
    await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(proxy.fake.requests[0]?.apiKey).toBe('sk-upstream-secret');
    expect(JSON.stringify(proxy.fake.requests)).not.toContain(proxy.alice.secret);
  });
});
