import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { testConfig } from '../testing/harness.js';
import type { ReplyBehaviour } from '../testing/fake-openai.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

const messages = [{ role: 'user' as const, content: 'hi' }];
const streamWholeAnswers = (on: boolean) => ({ proxy: { ...testConfig().proxy, streamWholeAnswers: on } });

const proxies: ProxyHarness[] = [];
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
});

async function proxyWith(on: boolean, budget = 1_000_000) {
  const p = await startProxy({ defaultBudgets: [monthlyUserTokens(budget)], config: streamWholeAnswers(on) });
  proxies.push(p);
  return p;
}

/** An answer without what differs between any two answers of the fake: ids and times. */
function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !['id', 'created', 'created_at', 'completed_at', 'call_id'].includes(key))
      .map(([key, v]) => [key, comparable(v)]),
  );
}

const replies: Array<[string, ReplyBehaviour, { max?: number }]> = [
  ['plain text', { kind: 'reply', outputTokens: 20 }, {}],
  ['reasoning, then text', { kind: 'reply', reasoningTokens: 5, outputTokens: 10 }, {}],
  ['only a tool call', { kind: 'reply', toolCall: { name: 'get_weather', arguments: ['{"city":', '"Berlin"}'] } }, {}],
  ['text and a tool call', { kind: 'reply', text: [' let', ' me', ' check'], toolCall: { name: 'lookup', arguments: ['{}'] } }, {}],
  ['cut by max_tokens', { kind: 'reply', outputTokens: 50 }, { max: 7 }],
];

describe('proxy.streamWholeAnswers: a whole answer served from an upstream stream', () => {
  it.each(replies)('chat, %s: the client gets the same whole answer as from the upstream’s own', async (_label, reply, { max }) => {
    const answers = [];
    for (const on of [false, true]) {
      const p = await proxyWith(on);
      p.fake.enqueue(reply);
      answers.push(await p.client(p.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages, ...(max ? { max_tokens: max } : {}) }));
      expect(p.fake.requests[0]?.body).toMatchObject(on ? { stream: true, stream_options: { include_usage: true } } : {});
      expect((p.fake.requests[0]?.body as { stream?: unknown }).stream === true).toBe(on);
      const [entry] = await p.svc.store.recentEntries(1);
      expect(entry).toMatchObject({ source: 'upstream', outcome: 'ok', outputTokens: answers.at(-1)?.usage?.completion_tokens });
    }
    expect(comparable(answers[1])).toEqual(comparable(answers[0]));
  });

  it.each(replies)('responses, %s: the client gets the same whole response as from the upstream’s own', async (_label, reply, { max }) => {
    const answers = [];
    for (const on of [false, true]) {
      const p = await proxyWith(on);
      p.fake.enqueue(reply);
      answers.push(await p.client(p.alice.secret).responses.create({ model: 'gpt-4o-mini', input: 'hi', ...(max ? { max_output_tokens: Math.max(16, max) } : {}) }));
    }
    expect(comparable(answers[1])).toEqual(comparable(answers[0]));
  });

  it('an upstream that ignores max_tokens is cut at the budget: a whole answer never charges past it', async () => {
    for (const on of [false, true]) {
      const p = await proxyWith(on, 500);
      p.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true });
      const answer = await p.client(p.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages });
      const [entry] = await p.svc.store.recentEntries(1);
      if (!on) {
        // Passed through whole: the upstream's 5,000 tokens are the truth, and charged.
        expect(entry?.outputTokens).toBe(5_000);
        continue;
      }
      expect(answer.choices[0]?.finish_reason).toBe('length');
      expect(entry).toMatchObject({ outcome: 'cut_off', source: 'estimated' });
      expect((entry?.inputTokens ?? 0) + (entry?.outputTokens ?? 0)).toBeLessThanOrEqual(500);
      expect(answer.usage?.completion_tokens).toBe(entry?.outputTokens);
      expect(answer.choices[0]?.message.content).toBe(' hi'.repeat(entry?.outputTokens ?? 0));
      expect(await p.svc.store.listHolds()).toEqual([]);
    }
  });

  it('a response cut at the budget keeps the text it had', async () => {
    const p = await proxyWith(true, 300);
    p.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true });
    const answer = await p.client(p.alice.secret).responses.create({ model: 'gpt-4o-mini', input: 'hi' });
    expect(answer.status).toBe('incomplete');
    expect(answer.incomplete_details?.reason).toBe('max_output_tokens');
    const [entry] = await p.svc.store.recentEntries(1);
    expect(answer.output_text).toBe(' hi'.repeat(entry?.outputTokens ?? -1));
    expect((entry?.inputTokens ?? 0) + (entry?.outputTokens ?? 0)).toBeLessThanOrEqual(300);
  });

  it('a stream the upstream breaks off is a 502 for the whole-answer client', async () => {
    const p = await proxyWith(true);
    p.fake.enqueue({ kind: 'drop', afterPieces: 4 });
    const error = (await p.client(p.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(502);
    expect(error.code).toBe('upstream_failed');
    expect(await p.svc.store.listHolds()).toEqual([]);
  });

  it('a whole answer holds a lease, not its whole allowance: concurrent ones are not refused for a worst case', async () => {
    // gpt-4o-mini may write 16,384 tokens. Held whole, the first of three requests leaves the second
    // the ~3,600 left of a 20,000 budget (its max_tokens clamped to that) and the third nothing.
    for (const on of [false, true]) {
      const p = await proxyWith(on, 20_000);
      p.fake.defaultBehaviour = { kind: 'reply', outputTokens: 100, chunkDelayMs: 2 };
      const client = p.client(p.alice.secret);
      const results = await Promise.allSettled([1, 2, 3].map(() => client.chat.completions.create({ model: 'gpt-4o-mini', messages })));
      const served = results.filter((r) => r.status === 'fulfilled');
      for (const r of served) expect(r.value.choices[0]?.message.content).toBe(' hi'.repeat(100));
      const clamped = p.fake.requests.filter((r) => (r.body as { max_completion_tokens?: unknown }).max_completion_tokens !== undefined);
      expect([served.length, clamped.length]).toEqual(on ? [3, 0] : [2, 1]);
    }
  });
});
