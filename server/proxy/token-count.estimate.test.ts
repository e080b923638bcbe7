import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { ESTIMATE_PROFILES, estimateOf, type EstimateProfile } from './model-family.js';
import { countPrompt, countPromptWith, type PromptCountJob } from './prompt-count.js';
import { createTokenCounter, preloadEncodings, REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE } from './token-count.js';

beforeAll(() => preloadEncodings());

const o200k = createRequire(import.meta.url)('gpt-tokenizer/encoding/o200k_base') as { countTokens(text: string, options: object): number };
const raw = (text: string) => o200k.countTokens(text, { disallowedSpecial: new Set() });
const est = (profile: EstimateProfile, text: string) => estimateOf(profile, text, raw(text));

const CLAUDE = 'claude-sonnet-4-5';
const claude = ESTIMATE_PROFILES.claude;
const PROMPT = 'Tell me a story about 3 dragons and a lighthouse keeper named Ada.';
const chatBody = (content: string) => ({ model: 'x', messages: [{ role: 'user', content }] });
/** Factors of 1 and no allowances: the o200k count itself. */
const PLAIN: EstimateProfile = { common: 1, cyrillic: 1, other: 1, brahmic: 1, perDigit: 0 };

describe('the estimate applied to prompts', () => {
  it('chat: each text raised by its family, the framing added, the sum rounded up once', () => {
    const expected = REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + Math.ceil(est(claude, 'user') + est(claude, PROMPT));
    expect(createTokenCounter().countChatPrompt(CLAUDE, chatBody(PROMPT))).toBe(expected);
    expect(expected).toBeGreaterThan(createTokenCounter().countChatPrompt('gpt-4o', chatBody(PROMPT)));
  });

  it('responses and embeddings are raised the same way', () => {
    const gemini = ESTIMATE_PROFILES.gemini;
    const responses = createTokenCounter().countResponsesInput('gemini-2.5-flash', { input: PROMPT });
    expect(responses).toBe(REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + Math.ceil(est(gemini, 'user') + est(gemini, PROMPT)));
    const any = ESTIMATE_PROFILES.any;
    expect(createTokenCounter().countEmbeddingInput('nomic-embed-text', [PROMPT, 'second'])).toBe(Math.ceil(est(any, PROMPT) + est(any, 'second')));
  });

  it('OpenAI models: the same counts as the cookbook framing of o200k_base, overrides or not', () => {
    const exact = REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + raw('user') + raw(PROMPT);
    expect(createTokenCounter().countChatPrompt('gpt-4o', chatBody(PROMPT))).toBe(exact);
    expect(createTokenCounter({ estimates: { any: { ...PLAIN, common: 9 } } }).countChatPrompt('gpt-4o', chatBody(PROMPT))).toBe(exact);
    expect(createTokenCounter().countText('gpt-4o-mini', PROMPT)).toBe(raw(PROMPT));
  });

  it('one counter keeps exact counts and estimates of the same message apart, in either order', () => {
    const exact = createTokenCounter().countChatPrompt('gpt-4o', chatBody(PROMPT));
    const estimate = createTokenCounter().countChatPrompt(CLAUDE, chatBody(PROMPT));
    const both = createTokenCounter();
    expect([both.countChatPrompt('gpt-4o', chatBody(PROMPT)), both.countChatPrompt(CLAUDE, chatBody(PROMPT))]).toEqual([exact, estimate]);
    expect([both.countChatPrompt(CLAUDE, chatBody(PROMPT)), both.countChatPrompt('gpt-4o', chatBody(PROMPT))]).toEqual([estimate, exact]);
    // and two families' estimates apart too
    expect(both.countText('llama3.1:8b', PROMPT)).toBe(Math.ceil(est(ESTIMATE_PROFILES['llama-3'], PROMPT)));
    expect(both.countText('qwen3:8b', PROMPT)).toBe(Math.ceil(est(ESTIMATE_PROFILES.qwen, PROMPT)));
  });

  it('estimate overrides replace a profile (a fake upstream that counts like o200k_base)', () => {
    const plain = createTokenCounter({ estimates: { claude: PLAIN } });
    expect(plain.countText(CLAUDE, PROMPT)).toBe(raw(PROMPT));
    expect(plain.countChatPrompt(CLAUDE, chatBody(PROMPT))).toBe(createTokenCounter().countChatPrompt('gpt-4o', chatBody(PROMPT)));
    expect(plain.estimates).toEqual({ claude: PLAIN });
  });

  it('a large prompt counted on the counting thread gets the same estimate, with the same overrides', async () => {
    const text = randomBytes(150_000).toString('base64');
    const job: PromptCountJob = { kind: 'chat', model: CLAUDE, body: chatBody(text) };
    const counted = countPrompt(createTokenCounter(), job);
    expect(counted).toBeInstanceOf(Promise);
    const inline = countPromptWith(createTokenCounter(), job);
    expect(await counted).toBe(inline);
    expect(inline).toBeGreaterThan(countPromptWith(createTokenCounter(), { ...job, model: 'gpt-4o' }));

    const halved: EstimateProfile = { ...claude, common: 0.5 };
    const overridden = countPrompt(createTokenCounter({ estimates: { claude: halved } }), job);
    expect(overridden).toBeInstanceOf(Promise);
    expect(await overridden).toBe(countPromptWith(createTokenCounter({ estimates: { claude: halved } }), job));
    expect(await overridden).toBeLessThan(inline);
  });
});

describe('outputCounter: live output, raised without rounding each delta up', () => {
  it('a stream of one-token deltas adds up to the rounded estimate of the whole', () => {
    const count = createTokenCounter().outputCounter(CLAUDE);
    const added = Array.from({ length: 100 }, () => count([' hi']));
    expect(added.reduce((a, b) => a + b, 0)).toBe(Math.ceil(100 * claude.common));
    expect(new Set(added)).toEqual(new Set([1, 2]));
  });

  it('counts every piece of one event, and the total is at least the sum of the pieces as o200k counts them', () => {
    const count = createTokenCounter().outputCounter('gemini-2.5-flash');
    const pieces = ['The answer is 42', ' because', ' — well, 6 × 7.'];
    const total = count(pieces);
    expect(total).toBe(Math.ceil(pieces.reduce((sum, piece) => sum + est(ESTIMATE_PROFILES.gemini, piece), 0)));
    expect(count([])).toBe(0);
  });

  it('OpenAI models: countText of each piece, as before', () => {
    const tokens = createTokenCounter();
    const count = tokens.outputCounter('gpt-4o');
    expect(Array.from({ length: 10 }, () => count([' hi']))).toEqual(Array(10).fill(1));
    expect(count(['Hello', ' world', '!'])).toBe(tokens.countText('gpt-4o', 'Hello') + tokens.countText('gpt-4o', ' world') + tokens.countText('gpt-4o', '!'));
  });

  it('each answer has its own running estimate', () => {
    const tokens = createTokenCounter();
    const first = tokens.outputCounter(CLAUDE);
    const second = tokens.outputCounter(CLAUDE);
    expect(first([' hi'])).toBe(2); // ceil(1.5)
    expect(second([' hi'])).toBe(2);
    expect(first([' hi'])).toBe(1); // ceil(3.0) - 2
  });
});
