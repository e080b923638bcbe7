import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { countPrompt, countPromptWith, INLINE_NEW_TEXT_CHARS, type PromptCountJob } from './prompt-count.js';
import { countWithin, createTokenCounter, preloadEncodings } from './token-count.js';

beforeAll(() => preloadEncodings());

/** Text the tokenizer has never seen: its slowest kind (1–2 s per MB). */
const novelText = (chars: number) => randomBytes(Math.ceil((chars * 3) / 4)).toString('base64').slice(0, chars);

const chat = (content: string): PromptCountJob => ({ kind: 'chat', model: 'gpt-4o-mini', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] } });

describe('countWithin: a count only as far as it is cheap', () => {
  it('counts exactly within its allowance, and gives up (null) past it', () => {
    const tokens = createTokenCounter();
    const text = novelText(3_000);
    const exact = createTokenCounter().countChatPrompt('gpt-4o-mini', chat(text).body);
    expect(countWithin(2_000, () => tokens.countChatPrompt('gpt-4o-mini', chat(text).body))).toBeNull();
    expect(countWithin(4_000, () => tokens.countChatPrompt('gpt-4o-mini', chat(text).body))).toBe(exact);
    // Counted once, the message is cached: it costs no allowance any more.
    expect(countWithin(0, () => tokens.countChatPrompt('gpt-4o-mini', chat(text).body))).toBe(exact);
  });

  it('leaves counting outside it unbounded, even after giving up', () => {
    const tokens = createTokenCounter();
    expect(countWithin(10, () => tokens.countText('gpt-4o-mini', novelText(100)))).toBeNull();
    expect(tokens.countText('gpt-4o-mini', novelText(5_000))).toBeGreaterThan(0);
  });
});

describe('countPrompt: in place when cheap, on the counting thread when not, the same number either way', () => {
  it.each<[string, PromptCountJob]>([
    ['chat', chat(novelText(200_000))],
    ['responses', { kind: 'responses', model: 'gpt-4o-mini', body: { model: 'gpt-4o-mini', input: novelText(200_000), instructions: 'be brief' } }],
    ['embeddings', { kind: 'embeddings', model: 'text-embedding-3-small', body: [novelText(100_000), novelText(100_000)] }],
  ])('%s: a prompt with much new text is counted off the event loop, exactly', async (_label, job) => {
    const counted = countPrompt(createTokenCounter(), job);
    expect(counted).toBeInstanceOf(Promise);
    expect(await counted).toBe(countPromptWith(createTokenCounter(), job));
  });

  it('a small prompt, or one whose history is already counted, is counted in place', () => {
    const tokens = createTokenCounter();
    expect(typeof countPrompt(tokens, chat(novelText(INLINE_NEW_TEXT_CHARS / 2)))).toBe('number');
    const history = novelText(50_000);
    countPromptWith(tokens, chat(history));
    const nextTurn: PromptCountJob = { kind: 'chat', model: 'gpt-4o-mini', body: { messages: [{ role: 'user', content: history }, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'and then?' }] } };
    expect(typeof countPrompt(tokens, nextTurn)).toBe('number');
  });
});

describe('the proxy while a large new prompt is counted', () => {
  const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 10_000_000, limitUsd: null, onLimit: 'reject' };
  let proxy: ProxyHarness;
  beforeAll(async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('answers /health at once while 1 MB of text it has never seen is counted (1–2 s of tokenizer work)', async () => {
    const answering = proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: novelText(1_000_000) }] });
    const probes: number[] = [];
    let done = false;
    void answering.finally(() => (done = true));
    // Probe until the answer is back: each probe waits for whatever the request does on the loop.
    while (!done) {
      const started = performance.now();
      expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
      probes.push(performance.now() - started);
    }
    const answer = await answering;
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect(probes.length).toBeGreaterThan(0);
    // Loose against noise from other test files; a count on the loop would hold a probe 1–2 s.
    expect(Math.max(...probes)).toBeLessThan(250);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry?.source).toBe('upstream');
  });
});
