import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, testConfig } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { ESTIMATE_PROFILES } from './model-family.js';
import { createTokenCounter } from './token-count.js';

/**
 * Estimated counts through the real server: a model whose tokenizer we cannot run (here Claude,
 * served by an OpenAI-compatible upstream, as deployments serve `claude-*` aliases) is held and cut
 * on its family's estimate, and the estimate is compared with the upstream's usage in /metrics.
 */
let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const CLAUDE = 'claude-sonnet-4-5';
const ask = (text: string) => [{ role: 'user' as const, content: text }];
const PROMPT = 'Tell me about the lighthouse keeper.';

/**
 * A labelled histogram's count and sum, read from the exposition text (parse-prometheus-text-format
 * merges a histogram's label sets into one), or null when it has no series with these labels.
 */
async function scrapeHistogram(p: ProxyHarness, name: string, labels: Record<string, string>) {
  const response = await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await response.text();
  const read = (suffix: 'count' | 'sum'): number | null => {
    for (const line of text.split('\n')) {
      const match = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
      if (!match || match[1] !== `lobe_quota_${name}_${suffix}`) continue;
      const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
    }
    return null;
  };
  const count = read('count');
  return count === null ? null : { count, sum: read('sum') };
}

describe('estimates for models of other families', () => {
  it('holds a Claude prompt at its estimate and compares it with the upstream, per family, in /metrics', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const alice = proxy.client(proxy.alice.secret);
    const estimate = createTokenCounter().countChatPrompt(CLAUDE, { model: CLAUDE, messages: ask(PROMPT) });
    const exact = createTokenCounter().countChatPrompt('gpt-4o-mini', { model: 'gpt-4o-mini', messages: ask(PROMPT) });
    expect(estimate).toBeGreaterThan(exact);

    // a whole answer: its prompt is compared; its output was not counted (the upstream reported it)
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 4, usage: { prompt_tokens: 20 } });
    await alice.chat.completions.create({ model: CLAUDE, messages: ask(PROMPT) });
    // a stream of 30 one-token pieces: prompt and output are compared
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 30, usage: { prompt_tokens: 20 } });
    const stream = await alice.chat.completions.create({ model: CLAUDE, messages: ask(PROMPT), stream: true });
    for await (const _chunk of stream) void _chunk;
    // an OpenAI model, counted exactly
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5, usage: { prompt_tokens: exact } });
    const exactStream = await alice.chat.completions.create({ model: 'gpt-4o-mini', messages: ask(PROMPT), stream: true });
    for await (const _chunk of exactStream) void _chunk;

    const prompt = await scrapeHistogram(proxy, 'estimate_ratio', { family: 'claude', kind: 'prompt' });
    expect(prompt?.count).toBe(2);
    expect(prompt?.sum).toBeCloseTo((2 * estimate) / 20, 9);
    const output = await scrapeHistogram(proxy, 'estimate_ratio', { family: 'claude', kind: 'output' });
    // 30 pieces of " hi", one o200k token each: the estimate rounds 30 × 1.5 up once
    expect(output).toMatchObject({ count: 1 });
    expect(output?.sum).toBeCloseTo(Math.ceil(30 * ESTIMATE_PROFILES.claude.common) / 30, 9);
    expect(await scrapeHistogram(proxy, 'estimate_ratio', { family: 'openai', kind: 'prompt' })).toMatchObject({ count: 1, sum: 1 });
    expect(await scrapeHistogram(proxy, 'estimate_ratio', { family: 'openai', kind: 'output' })).toMatchObject({ count: 1, sum: 1 });
    // only families that had requests have series: labels stay a handful, never a model name
    expect(await scrapeHistogram(proxy, 'estimate_ratio', { family: 'gemini' })).toBeNull();
  });

  it('cuts a Claude stream whose upstream ignores the limit on the estimate of its output, within the budget', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(600)], config: { proxy: { ...testConfig().proxy, leaseTokens: 64 } } });
    const served: Record<string, number> = {};
    for (const model of [CLAUDE, 'gpt-4o-mini']) {
      proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true });
      let pieces = 0;
      let finish: string | null = null;
      const stream = await proxy
        .client((await freshUser(proxy, model)).secret)
        .chat.completions.create({ model, messages: ask(PROMPT), stream: true });
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) pieces++;
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(finish).toBe('length');
      served[model] = pieces;
    }
    const promptOf = (model: string) => createTokenCounter().countChatPrompt(model, { model, messages: ask(PROMPT) });
    // each piece counts 1.5 for Claude: the stream stops after about (600 − prompt) / 1.5 of them
    const claudeRoom = 600 - promptOf(CLAUDE);
    expect(served[CLAUDE]).toBeLessThanOrEqual(Math.floor(claudeRoom / ESTIMATE_PROFILES.claude.common));
    expect(served[CLAUDE]).toBeGreaterThan(Math.floor(claudeRoom / ESTIMATE_PROFILES.claude.common) - 2);
    expect(served['gpt-4o-mini']).toBe(600 - promptOf('gpt-4o-mini'));
  });

  it("takes an operator's factors from the config (proxy.estimates), over the shipped ones", async () => {
    // Claude's Latin text counted as o200k_base counts it: the stream is cut where gpt-4o-mini's is.
    proxy = await startProxy({
      defaultBudgets: [monthlyUserTokens(600)],
      config: { proxy: { ...testConfig().proxy, leaseTokens: 64, estimates: { claude: { common: 1, perDigit: 0 } } } },
    });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxTokens: true });
    let pieces = 0;
    const stream = await proxy.client(proxy.alice.secret).chat.completions.create({ model: CLAUDE, messages: ask(PROMPT), stream: true });
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) pieces++;
    const exact = createTokenCounter({ estimates: { claude: { ...ESTIMATE_PROFILES.claude, common: 1, perDigit: 0 } } });
    expect(pieces).toBe(600 - exact.countChatPrompt(CLAUDE, { model: CLAUDE, messages: ask(PROMPT) }));
  });
});

/** A user of their own with a fresh 600-token budget (the default budget is per user). */
async function freshUser(p: ProxyHarness, label: string) {
  const id = `u-${label.replace(/[^a-z0-9]/g, '')}`;
  await p.svc.admin('POST', '/admin/users', { id });
  const created = await p.svc.admin('POST', '/admin/keys', { userId: id });
  return { secret: ((await created.json()) as { key: string }).key };
}
