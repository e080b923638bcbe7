import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { startFakeAnthropic } from '../testing/fake-anthropic.js';
import { startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai.js';
import { ADMIN_TOKEN, serveInFrontOf, testConfig, type ServerInFront } from '../testing/harness.js';
import type { Config } from '../config/load.js';
import { usageCostMicros } from './pricing.js';

/**
 * The routing step through the official OpenAI SDK: budgets of some models, a free model under a
 * spent dollar budget, fallback rules, and upstreams (provider accounts) with budgets of their own
 * and failover. Two fake upstreams, "plan-a" then "plan-b", serve every model.
 */

interface TwoUpstreams extends ServerInFront {
  a: FakeOpenAI;
  b: FakeOpenAI;
  client: OpenAI;
}

let running: TwoUpstreams | null = null;

afterEach(async () => {
  await running?.close();
  running = null;
});

async function start(config: Partial<Config> = {}): Promise<TwoUpstreams> {
  const a = await startFakeOpenAI();
  const b = await startFakeOpenAI();
  const server = await serveInFrontOf(
    { close: async () => Promise.all([a.close(), b.close()]).then(() => undefined) },
    {
      upstreams: [
        { name: 'plan-a', baseUrl: a.baseUrl, apiKey: 'sk-a', models: ['*'] },
        { name: 'plan-b', baseUrl: b.baseUrl, apiKey: 'sk-b', models: ['*'] },
      ],
      config,
    },
  );
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.alice.secret, maxRetries: 0 });
  running = { ...server, a, b, client };
  return running;
}

const ask = (client: OpenAI, model: string, maxTokens = 20) =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: maxTokens }).withResponse();

async function putBudget(p: ServerInFront, body: object): Promise<void> {
  const response = await p.svc.admin('PUT', '/admin/budgets', body);
  expect(response.status, await response.clone().text()).toBeLessThan(300);
}

const day = { kind: 'day', timeZone: 'UTC' } as const;

const metrics = async (p: ServerInFront): Promise<string> => (await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();

describe('budgets of some models', () => {
  it('refuses gpt-5 at its family budget while gpt-4o-mini still works, and both count in the overall budget', async () => {
    const p = await start();
    await putBudget(p, { scope: 'user:alice', window: day, limitTokens: 10_000 });
    await putBudget(p, { scope: 'user:alice', window: day, limitTokens: 30, models: ['gpt-5*', 'o3*'] });

    await ask(p.client, 'gpt-5');
    const refused = await ask(p.client, 'gpt-5').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota');
    expect((refused as Error).message).toContain('gpt-5*');

    const { data } = await ask(p.client, 'gpt-4o-mini');
    expect(data.model).toBe('gpt-4o-mini');

    const quota = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { budgets: Array<{ scope: string; models?: string[]; usedTokens: number }> };
    const user = quota.budgets.filter((b) => b.scope === 'user:alice').map((b) => [b.models ?? null, b.usedTokens]);
    expect(user).toEqual([
      [null, 56],
      [['gpt-5*', 'o3*'], 28],
    ]);
  });

  it('serves a model priced at $0 under a spent dollar budget, and counts its tokens', async () => {
    const p = await start({ prices: { 'qwen3:8b': { input: 0, output: 0 } } } as Partial<Config>);
    await putBudget(p, { scope: 'user:alice', window: day, limitUsd: 0.000_01 });
    await putBudget(p, { scope: 'user:alice', window: day, limitTokens: 10_000, models: ['qwen3*'] });
    // The first request spends the dollar budget (and more: its output is charged whole).
    await ask(p.client, 'gpt-4o-mini');
    await expect(ask(p.client, 'gpt-4o-mini')).rejects.toBeInstanceOf(OpenAI.RateLimitError);

    const { data } = await ask(p.client, 'qwen3:8b');
    expect(data.model).toBe('qwen3:8b');
    const [entry] = await p.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ model: 'qwen3:8b', costMicros: 0, inputTokens: 8, outputTokens: 20 });
    const [, tokens] = await p.svc.store.budgetStates([{ kind: 'user', id: 'alice' }], p.svc.clock.now());
    expect(tokens?.usage.usedTokens).toBe(28);
  });
});

describe('fallback rules', () => {
  it('at 90 % sends gpt-5 to gpt-5-mini, says so, answers with the real model and charges its price', async () => {
    const p = await start();
    // gpt-5: 8 prompt tokens at $1.25/M and 20 output at $10/M = 210 micro-dollars a request.
    await putBudget(p, { scope: 'user:alice', window: day, limitUsd: 0.000_45, models: ['gpt-5'], fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    p.a.enqueue({ kind: 'reply', outputTokens: 40 });
    const first = await ask(p.client, 'gpt-5', 40);
    expect(first.response.headers.get('x-quota-routed-from')).toBeNull();
    // 410 of 450 micro-dollars: 91 %, and still room for a short gpt-5 answer; the rule sends it on.
    const routed = await ask(p.client, 'gpt-5', 2);
    expect(routed.response.headers.get('x-quota-routed-from')).toBe('gpt-5');
    expect(routed.data.model).toBe('gpt-5-mini');
    expect(p.a.requests.at(-1)?.body).toMatchObject({ model: 'gpt-5-mini' });

    const [entry] = await p.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ model: 'gpt-5-mini', inputTokens: 8, outputTokens: 2 });
    // gpt-5-mini's price ($0.25 / $2 per 1M), not gpt-5's.
    expect(entry?.costMicros).toBe(usageCostMicros({ inputMicrosPerMillion: 250_000, cachedInputMicrosPerMillion: 25_000, outputMicrosPerMillion: 2_000_000 }, { inputTokens: 8, outputTokens: 2, cachedTokens: 0 }));
    // The family budget of gpt-5 counted nothing more.
    const states = await p.svc.store.budgetStates([{ kind: 'user', id: 'alice' }], p.svc.clock.now());
    expect(states[0]?.usage.usedMicros).toBe(410);
    expect(await metrics(p)).toContain('lobe_quota_routed_total{from="gpt-5",to="gpt-5-mini"} 1');
  });

  it('at the limit goes down the chain to the rule at 100, and refuses once every model is spent', async () => {
    const p = await start({ prices: { 'qwen3:8b': { input: 0, output: 0 } } } as Partial<Config>);
    // gpt-4o: 8 prompt tokens at $2.50/M and 20 output at $10/M = 220 micro-dollars a request.
    await putBudget(p, {
      scope: 'user:alice',
      window: day,
      limitUsd: 0.000_23,
      fallback: [
        { at: 90, to: 'gpt-4o-mini' },
        { at: 100, to: 'qwen3:8b' },
      ],
    });
    await putBudget(p, { scope: 'user:alice', window: { kind: 'week', timeZone: 'UTC' }, limitTokens: 60, models: ['qwen3*'] });
    expect((await ask(p.client, 'gpt-4o')).data.model).toBe('gpt-4o');
    // 220 of 230 micro-dollars: another gpt-4o does not fit, so the rule at 100 applies, past the one at 90.
    const second = await ask(p.client, 'gpt-4o');
    expect(second.data.model).toBe('qwen3:8b');
    expect(second.response.headers.get('x-quota-routed-from')).toBe('gpt-4o');
    expect((await ask(p.client, 'gpt-4o')).data.model).toBe('qwen3:8b');
    // qwen3's own weekly budget (60 tokens, 56 used) stops it now, and it has no rule: refused.
    const refused = await ask(p.client, 'gpt-4o').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as Error).message).toContain('qwen3*');
    expect((await p.svc.store.recentEntries(5)).map((e) => [e.model, e.costMicros])).toEqual([
      ['qwen3:8b', 0],
      ['qwen3:8b', 0],
      ['gpt-4o', 220],
    ]);
  });
});

describe('upstreams in priority order', () => {
  it("sends a request to the next upstream when the first one's own budget cannot take it", async () => {
    const p = await start();
    await putBudget(p, { scope: 'upstream:plan-a', window: { kind: 'rolling', hours: 1 }, limitTokens: 40 });
    await ask(p.client, 'gpt-4o-mini');
    await ask(p.client, 'gpt-4o-mini');
    expect([p.a.requests.length, p.b.requests.length]).toEqual([1, 1]);
    expect((await p.svc.store.recentEntries(2)).map((e) => e.upstream)).toEqual(['plan-b', 'plan-a']);

    // The admin's /quota lists the provider account with its budget.
    const all = (await (await p.svc.admin('GET', '/quota')).json()) as { subjects: Array<{ subject: { kind: string; id: string }; usage: number; limit: number }> };
    expect(all.subjects.filter((s) => s.subject.kind === 'upstream')).toMatchObject([{ subject: { kind: 'upstream', id: 'plan-a' }, usage: 28, limit: 40 }]);
    expect((await p.svc.admin('GET', '/quota/upstream:plan-a')).status).toBe(200);
    expect((await p.svc.admin('GET', '/quota/upstream:nope')).status).toBe(404);
    // A user cannot read a provider account's budget.
    expect((await p.svc.as(p.alice.secret, '/quota/upstream:plan-a')).status).toBe(403);
  });

  it('refuses a budget on an upstream the config does not have', async () => {
    const p = await start();
    const response = await p.svc.admin('PUT', '/admin/budgets', { scope: 'upstream:plan-z', window: day, limitTokens: 40 });
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('plan-z');
  });

  it('fails over on an upstream 503, charging nothing for the failed try', async () => {
    const p = await start();
    p.a.enqueue({ kind: 'error', status: 503 });
    const { data } = await ask(p.client, 'gpt-4o-mini');
    expect(data.choices[0]?.message.content).toContain('hi');
    expect([p.a.requests.length, p.b.requests.length]).toEqual([1, 1]);
    const entries = await p.svc.store.recentEntries(5);
    expect(entries.map((e) => [e.upstream, e.inputTokens + e.outputTokens])).toEqual([['plan-b', 28]]);
    expect(await p.svc.store.listHolds()).toEqual([]);
    expect(await metrics(p)).toContain('lobe_quota_upstream_failovers_total{upstream="plan-a"} 1');
  });

  it('fails over a stream on an upstream 429, and on one that sends no headers in time', async () => {
    const p = await start({ proxy: { ...testConfig().proxy, firstByteTimeoutMs: 300 } });
    p.a.enqueue({ kind: 'error', status: 429 }, { kind: 'hang' });
    for (let i = 0; i < 2; i++) {
      const stream = await p.client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe(' hi'.repeat(20));
    }
    expect([p.a.requests.length, p.b.requests.length]).toEqual([2, 2]);
    expect((await p.svc.store.recentEntries(5)).map((e) => e.upstream)).toEqual(['plan-b', 'plan-b']);
  });

  it('answers the last upstream error when every upstream fails, and never sends a begun answer twice', async () => {
    const p = await start();
    p.a.enqueue({ kind: 'error', status: 503 });
    p.b.enqueue({ kind: 'error', status: 502 });
    const failed = await ask(p.client, 'gpt-4o-mini').catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(OpenAI.APIError);
    expect((failed as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect(await p.svc.store.recentEntries(5)).toEqual([]);

    // A stream that broke off after its first bytes is charged for what came, and not sent again.
    p.a.enqueue({ kind: 'drop', afterPieces: 3 });
    const stream = await p.client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20, stream: true });
    await expect(
      (async () => {
        for await (const _ of stream) void _;
      })(),
    ).rejects.toThrow();
    expect([p.a.requests.length, p.b.requests.length]).toEqual([2, 1]);
  });
});

describe('routing in Anthropic format', () => {
  it('fails over a Claude stream on an overloaded upstream (529), and routes by a rule to another Claude model', async () => {
    const key = 'sk-ant-upstream-secret';
    const a = await startFakeAnthropic({ apiKey: key });
    const b = await startFakeAnthropic({ apiKey: key });
    const server = await serveInFrontOf(
      { close: async () => Promise.all([a.close(), b.close()]).then(() => undefined) },
      {
        upstreams: [
          { name: 'claude-a', api: 'anthropic', baseUrl: a.baseUrl, apiKey: key, models: ['claude-*'] },
          { name: 'claude-b', api: 'anthropic', baseUrl: b.baseUrl, apiKey: key, models: ['claude-*'] },
        ],
      },
    );
    onTestFinished(() => server.close());
    const client = new Anthropic({ baseURL: server.url, apiKey: server.alice.secret, maxRetries: 0 });

    a.enqueue({ kind: 'error', type: 'overloaded_error' });
    const stream = client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
    const message = await stream.finalMessage();
    expect(message.model).toBe('claude-sonnet-4-5');
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
    expect((await server.svc.store.recentEntries(1))[0]).toMatchObject({ upstream: 'claude-b', model: 'claude-sonnet-4-5' });

    await putBudget(server, { scope: 'user:alice', window: day, limitTokens: 10, models: ['claude-sonnet*'], fallback: [{ at: 100, to: 'claude-haiku-4-5' }] });
    const { data, response } = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(response.headers.get('x-quota-routed-from')).toBe('claude-sonnet-4-5');
    expect(data.model).toBe('claude-haiku-4-5');
    expect((await server.svc.store.recentEntries(1))[0]).toMatchObject({ upstream: 'claude-a', model: 'claude-haiku-4-5' });
  });
});
