import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../config/load.js';
import { startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai.js';
import { serveInFrontOf, testConfig, type ServerInFront } from '../testing/harness.js';

/**
 * The routing step's edges, through the OpenAI SDK: a rule at a percentage that cannot be followed,
 * free models under dollar rules, a rule's model beside a concurrency limit and a shared budget,
 * an upstream's budget on the last upstream, large prompts of free models, rate limits of cache
 * hits, and a failover whose answer is cached.
 */

interface Running extends ServerInFront {
  a: FakeOpenAI;
  b: FakeOpenAI;
  client: OpenAI;
}

let running: Running | null = null;

afterEach(async () => {
  await running?.close();
  running = null;
});

async function start(config: Partial<Config> = {}, upstreamCount: 1 | 2 = 1): Promise<Running> {
  const a = await startFakeOpenAI();
  const b = await startFakeOpenAI();
  const upstreams: Config['upstreams'] = [{ name: 'plan-a', baseUrl: a.baseUrl, apiKey: 'sk-a', models: ['*'] }];
  if (upstreamCount === 2) upstreams.push({ name: 'plan-b', baseUrl: b.baseUrl, apiKey: 'sk-b', models: ['*'] });
  const server = await serveInFrontOf({ close: async () => Promise.all([a.close(), b.close()]).then(() => undefined) }, { upstreams, config });
  running = { ...server, a, b, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.alice.secret, maxRetries: 0 }) };
  return running;
}

const ask = (client: OpenAI, model: string, options: { maxTokens?: number; content?: string } = {}) =>
  client.chat.completions
    .create({ model, messages: [{ role: 'user', content: options.content ?? 'hi' }], ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }) })
    .withResponse();

async function putBudget(p: ServerInFront, body: object): Promise<void> {
  const response = await p.svc.admin('PUT', '/admin/budgets', body);
  expect(response.status, await response.clone().text()).toBeLessThan(300);
}

const day = { kind: 'day', timeZone: 'UTC' } as const;
const free = { prices: { 'qwen3:8b': { input: 0, output: 0 } } } as Partial<Config>;

/** gpt-5 at 91 % of a $0.00045 budget: 8 prompt tokens and 40 output = 410 micro-dollars. */
async function spendGpt5To91Percent(p: Running): Promise<void> {
  p.a.enqueue({ kind: 'reply', outputTokens: 40 });
  await ask(p.client, 'gpt-5', { maxTokens: 40 });
}

describe('routing edges', () => {
  it("serves the asked model when a rule's model cannot be tried (unpriced under a dollar budget), and leaves no hold", async () => {
    const p = await start({ proxy: { ...testConfig().proxy, unpricedModels: 'refuse' } });
    await putBudget(p, { scope: 'user:alice', window: day, limitUsd: 0.000_45, models: ['gpt-5'], fallback: [{ at: 90, to: 'my-unpriced' }] });
    // A dollar budget on every model: the unpriced one cannot be kept to it, so it is refused (a 400).
    await putBudget(p, { scope: 'user:alice', window: { kind: 'week', timeZone: 'UTC' }, limitUsd: 1 });
    await spendGpt5To91Percent(p);
    const { data, response } = await ask(p.client, 'gpt-5', { maxTokens: 2 });
    expect(data.model).toBe('gpt-5');
    expect(response.headers.get('x-quota-routed-from')).toBeNull();
    expect(await p.svc.store.listHolds()).toEqual([]);
  });

  it("does not send a free model elsewhere by a dollar budget's rule", async () => {
    const p = await start(free);
    await putBudget(p, { scope: 'user:alice', window: day, limitUsd: 0.000_45, fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    await spendGpt5To91Percent(p);
    const { data } = await ask(p.client, 'qwen3:8b', { maxTokens: 2 });
    expect(data.model).toBe('qwen3:8b');
    expect((await p.svc.store.recentEntries(1))[0]).toMatchObject({ model: 'qwen3:8b', costMicros: 0 });
  });

  it("follows a rule at a percentage under maxConcurrent: 1 (the asked model's admission is not kept meanwhile)", async () => {
    const p = await start({ rateLimits: { user: { maxConcurrent: 1 } } } as Partial<Config>);
    await putBudget(p, { scope: 'user:alice', window: day, limitUsd: 0.000_45, models: ['gpt-5'], fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    await spendGpt5To91Percent(p);
    const { data, response } = await ask(p.client, 'gpt-5', { maxTokens: 2 });
    expect(data.model).toBe('gpt-5-mini');
    expect(response.headers.get('x-quota-routed-from')).toBe('gpt-5');
  });

  it("gives the rule's model the whole room of a budget both models share", async () => {
    const p = await start();
    await putBudget(p, { scope: 'user:alice', window: day, limitTokens: 10_000 });
    await putBudget(p, { scope: 'user:alice', window: { kind: 'week', timeZone: 'UTC' }, limitTokens: 100, models: ['gpt-5'], fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    p.a.enqueue({ kind: 'reply', outputTokens: 84 });
    await ask(p.client, 'gpt-5', { maxTokens: 84 });
    // 92 of gpt-5's 100 used: the rule sends the next one on, which may use 5,000 of the 9,908 left.
    const { data } = await ask(p.client, 'gpt-5', { maxTokens: 5_000 });
    expect(data.model).toBe('gpt-5-mini');
    expect(p.a.requests.at(-1)?.body).toMatchObject({ model: 'gpt-5-mini', max_tokens: 5_000 });
  });

  it("shrinks an answer to the only upstream's budget rather than refusing it, as any budget does", async () => {
    const p = await start();
    await putBudget(p, { scope: 'upstream:plan-a', window: { kind: 'rolling', hours: 1 }, limitTokens: 1_200 });
    // No max_tokens: the request asks for the model's whole output cap; the plan has 1,200 tokens.
    const { data } = await ask(p.client, 'gpt-4o-mini');
    expect(data.model).toBe('gpt-4o-mini');
    expect(p.a.requests.at(-1)?.body).toMatchObject({ max_completion_tokens: 1_200 - 8 });
  });

  it('admits a large prompt of a free model under a spent dollar budget', async () => {
    const p = await start(free);
    await putBudget(p, { scope: 'user:alice', window: day, limitUsd: 0.000_01 });
    await ask(p.client, 'gpt-4o-mini', { maxTokens: 20 });
    // Over 64 KB: checked against the budgets before it is counted.
    const { data } = await ask(p.client, 'qwen3:8b', { maxTokens: 20, content: 'word '.repeat(14_000) });
    expect(data.model).toBe('qwen3:8b');
  });
});

describe('cache hits and failover', () => {
  const question = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content: 'Name three marsupials.' }] };
  const cache = { enabled: true, scope: 'user', ttlSeconds: 3_600, maxMegabytes: 16, chargeFraction: 0 } as const;

  it('counts free hits against the rate limits even when a budget is past its limit', async () => {
    const p = await start({ cache, rateLimits: { user: { requestsPerMinute: 2 } } } as Partial<Config>);
    await p.client.chat.completions.create(question);
    await putBudget(p, { scope: 'user:alice', window: day, limitTokens: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await p.client.chat.completions.create(question).asResponse().then((r) => r.status, (e: InstanceType<typeof OpenAI.APIError>) => e.status ?? 0));
    // The miss was the first of the minute's two requests: one hit, then refusals.
    expect(statuses).toEqual([200, 429, 429]);
  });

  it('keeps the answer of a request that failed over, and serves it as a hit', async () => {
    const p = await start({ cache } as Partial<Config>, 2);
    p.a.enqueue({ kind: 'error', status: 503 });
    const first = await p.client.chat.completions.create(question).withResponse();
    expect(first.response.headers.get('x-quota-cache')).toBe('miss');
    const second = await p.client.chat.completions.create(question).withResponse();
    expect(second.response.headers.get('x-quota-cache')).toBe('hit');
    expect(second.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
    expect([p.a.requests.length, p.b.requests.length]).toEqual([1, 1]);
  });
});
