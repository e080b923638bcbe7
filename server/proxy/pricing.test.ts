import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_CAP, createPriceBook, dollarsToMicros, usageCostMicros, type ModelPrice } from './pricing.js';

/** Dollars per 1M tokens → the expected ModelPrice. */
const usd = (input: number, cachedInput: number, output: number): ModelPrice => ({
  inputMicrosPerMillion: Math.round(input * 1e6),
  cachedInputMicrosPerMillion: Math.round(cachedInput * 1e6),
  outputMicrosPerMillion: Math.round(output * 1e6),
});

describe('priceOf', () => {
  const book = createPriceBook({});

  it.each<[string, string, ModelPrice | null]>([
    ['exact id', 'gpt-4o', usd(2.5, 1.25, 10)],
    ['exact id', 'gpt-4o-mini', usd(0.15, 0.075, 0.6)],
    ['dated snapshot → family', 'gpt-4o-2024-08-06', usd(2.5, 1.25, 10)],
    ['dated snapshot → family', 'gpt-4o-2024-11-20', usd(2.5, 1.25, 10)],
    ['mini snapshot → mini, not gpt-4o', 'gpt-4o-mini-2024-07-18', usd(0.15, 0.075, 0.6)],
    ['snapshot priced on its own', 'gpt-4o-2024-05-13', usd(5, 5, 15)],
    ['nano snapshot → nano, not gpt-4.1', 'gpt-4.1-nano-2025-04-14', usd(0.1, 0.025, 0.4)],
    ['gpt-4.1', 'gpt-4.1-2025-04-14', usd(2, 0.5, 8)],
    ['gpt-5', 'gpt-5-2025-08-07', usd(1.25, 0.125, 10)],
    ['gpt-5-mini', 'gpt-5-mini-2025-08-07', usd(0.25, 0.025, 2)],
    ['gpt-5-nano', 'gpt-5-nano', usd(0.05, 0.005, 0.4)],
    ['o1', 'o1-2024-12-17', usd(15, 7.5, 60)],
    ['o3', 'o3-2025-04-16', usd(2, 0.5, 8)],
    ['o3-mini snapshot → o3-mini, not o3', 'o3-mini-2025-01-31', usd(1.1, 0.55, 4.4)],
    ['o4-mini', 'o4-mini-2025-04-16', usd(1.1, 0.275, 4.4)],
    ['o3-pro is not o3', 'o3-pro', usd(20, 20, 80)],
    ['four-digit snapshot', 'gpt-4-0613', usd(30, 30, 60)],
    ['gpt-3.5-turbo-0125', 'gpt-3.5-turbo-0125', usd(0.5, 0.5, 1.5)],
    ['embeddings: input only', 'text-embedding-3-small', usd(0.02, 0.02, 0)],
    ['embeddings: input only', 'text-embedding-3-large', usd(0.13, 0.13, 0)],
    ['embeddings: input only', 'text-embedding-ada-002', usd(0.1, 0.1, 0)],
    ['case and spaces do not matter', '  GPT-4o-Mini ', usd(0.15, 0.075, 0.6)],
    ['a variant is not a snapshot', 'gpt-4o-audio-preview', null],
    ['a variant is not a snapshot', 'gpt-4o-mini-search-preview', null],
    ['a prefix is not a boundary', 'gpt-4oo', null],
    ['unknown', 'llama-3.1-70b', null],
    ['unknown', 'deepseek-chat', null],
    ['empty', '', null],
    ['prototype keys are not models', 'constructor', null],
    ['prototype keys are not models', '__proto__', null],
  ])('%s: %s', (_label, model, price) => {
    expect(book.priceOf(model)).toEqual(price);
  });

  it.each(['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'o1', 'o3', 'o3-mini', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'text-embedding-3-small', 'text-embedding-3-large', 'text-embedding-ada-002'])(
    'ships a price for %s, in whole micro-dollars, cached never above input',
    (model) => {
      const price = book.priceOf(model);
      expect(price).not.toBeNull();
      for (const value of Object.values(price!)) expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
      expect(price!.cachedInputMicrosPerMillion).toBeLessThanOrEqual(price!.inputMicrosPerMillion);
    },
  );

  it('gives the same answer every time an id is asked again, however many other ids came between', () => {
    const asked = createPriceBook({ 'my-model': { input: 1, output: 2 } });
    const ids = ['gpt-4o-2024-08-06', 'o3-mini-2025-01-31', 'llama-3.1-70b', 'my-model-2025-01-01', 'GPT-4o-Mini', ''];
    const first = ids.map((id) => [asked.priceOf(id), asked.outputCapOf(id)]);
    for (let i = 0; i < 1_500; i++) asked.priceOf(`client-model-${i}`); // more ids than the memo keeps
    expect(ids.map((id) => [asked.priceOf(id), asked.outputCapOf(id)])).toEqual(first);
    const fresh = createPriceBook({ 'my-model': { input: 1, output: 2 } });
    expect(ids.map((id) => [fresh.priceOf(id), fresh.outputCapOf(id)])).toEqual(first);
    expect(first[3]?.[0]).toEqual(usd(1, 1, 2));
  });

  it('returns a price the caller cannot corrupt', () => {
    const price = book.priceOf('gpt-4o')!;
    expect(() => {
      (price as { inputMicrosPerMillion: number }).inputMicrosPerMillion = 0;
    }).toThrow();
    expect(book.priceOf('gpt-4o')!.inputMicrosPerMillion).toBe(2_500_000);
  });
});

describe('overrides', () => {
  const book = createPriceBook({
    'gpt-4o': { input: 3, output: 12 },
    'deepseek-chat': { input: 0.27, cachedInput: 0.07, output: 1.1 },
    'My-Embedder': { input: 0.05 },
  });

  it.each<[string, string, ModelPrice | null]>([
    ['an override wins (cached defaults to input)', 'gpt-4o', usd(3, 3, 12)],
    ['…for its snapshots too', 'gpt-4o-2024-08-06', usd(3, 3, 12)],
    ['…but not over a more specific shipped id', 'gpt-4o-mini', usd(0.15, 0.075, 0.6)],
    ['an override adds a model', 'deepseek-chat', usd(0.27, 0.07, 1.1)],
    ['override ids are case-insensitive; output defaults to input', 'my-embedder', usd(0.05, 0.05, 0.05)],
    ['shipped prices stay', 'gpt-5', usd(1.25, 0.125, 10)],
    ['still unknown', 'deepseek-reasoner', null],
  ])('%s: %s', (_label, model, price) => {
    expect(book.priceOf(model)).toEqual(price);
  });

  it('does not change other books', () => {
    expect(createPriceBook({}).priceOf('gpt-4o')).toEqual(usd(2.5, 1.25, 10));
    expect(createPriceBook().priceOf('deepseek-chat')).toBeNull();
  });

  it.each<[string, unknown]>([
    ['negative input', { input: -1 }],
    ['NaN output', { input: 1, output: Number.NaN }],
    ['infinite cached', { input: 1, cachedInput: Number.POSITIVE_INFINITY }],
    ['a string', { input: '1' }],
    ['missing input', {}],
    ['null', null],
  ])('rejects an invalid override: %s', (_label, override) => {
    expect(() => createPriceBook({ bad: override as { input: number } })).toThrow(RangeError);
  });
});

describe('glob overrides', () => {
  const book = createPriceBook({
    'deepseek-*': { input: 0.27, output: 1.1 },
    'deepseek-r*': { input: 0.55, output: 2.19 },
    'deepseek-chat': { input: 0.3, output: 1.2 },
    'gpt-4o*': { input: 9, output: 9 },
    'qwen*-max': { input: 1.6, output: 6.4 },
    'qwen-tur*': { input: 0.8, output: 2 },
    'qwen-*': { input: 0.4, output: 1.2 },
    'bad-*': { input: 2, output: 2 },
  });

  it.each<[string, string, ModelPrice | null]>([
    ['a glob prices what it matches', 'deepseek-v3', usd(0.27, 0.27, 1.1)],
    ['an exact id beats any glob', 'deepseek-chat', usd(0.3, 0.3, 1.2)],
    ['the most specific glob wins', 'deepseek-reasoner', usd(0.55, 0.55, 2.19)],
    ['…whatever the order listed', 'deepseek-r1-distill', usd(0.55, 0.55, 2.19)],
    ['a glob never beats a shipped exact id', 'gpt-4o-mini', usd(0.15, 0.075, 0.6)],
    ['…nor a dated snapshot of one', 'gpt-4o-2024-08-06', usd(2.5, 1.25, 10)],
    ['…but prices what nothing else does', 'gpt-4o-audio-preview', usd(9, 9, 9)],
    ['`*` in the middle', 'qwen2.5-max', usd(1.6, 1.6, 6.4)],
    ['equally specific (8 characters besides `*`): the first listed', 'qwen-turbo-max', usd(1.6, 1.6, 6.4)],
    ['more specific than `qwen-*`', 'qwen-turbo', usd(0.8, 0.8, 2)],
    ['`*` matches nothing too', 'bad-', usd(2, 2, 2)],
    ['globs are case-insensitive', 'DeepSeek-V3', usd(0.27, 0.27, 1.1)],
    ['no glob matches', 'llama-3.1-70b', null],
    ['regex characters in a key are literal', 'qwen2.5+max', null],
  ])('%s: %s', (_label, model, price) => {
    expect(book.priceOf(model)).toEqual(price);
  });

  it('a lone `*` prices every model without a price of its own', () => {
    const all = createPriceBook({ '*': { input: 1, output: 1 } });
    expect(all.priceOf('anything-at-all')).toEqual(usd(1, 1, 1));
    expect(all.priceOf('gpt-4o')).toEqual(usd(2.5, 1.25, 10));
  });

  it.each<[string, string]>([
    ['empty', ''],
    ['only spaces', '   '],
    ['a space inside', 'gpt 4o'],
    ['a leading space', ' gpt-4o'],
    ['a tab', 'gpt-4o\t'],
    ['a control character', 'gpt-\u001b[31m4o'],
    ['DEL', 'gpt-4o\u007f'],
    ['too long', 'x'.repeat(257)],
  ])('rejects a key that names no model: %s', (_label, key) => {
    expect(() => createPriceBook({ [key]: { input: 1 } })).toThrow(RangeError);
  });
});

describe('dollarsToMicros', () => {
  it.each<[number, number]>([
    [0, 0],
    [1, 1_000_000],
    [2.5, 2_500_000],
    [0.075, 75_000],
    [0.175, 175_000],
    [0.005, 5_000],
    [1.1, 1_100_000],
    [4.4, 4_400_000],
    [0.0000001, 1], // below a micro-dollar: rounded up, never down to free
    [0.0000015, 2],
  ])('$%d → %i micros', (dollars, micros) => {
    expect(dollarsToMicros(dollars)).toBe(micros);
  });
});

describe('usageCostMicros', () => {
  const gpt4o = usd(2.5, 1.25, 10);
  const mini = usd(0.15, 0.075, 0.6);

  it.each<[string, ModelPrice, { inputTokens: number; cachedTokens: number; outputTokens: number }, number]>([
    ['nothing', gpt4o, { inputTokens: 0, cachedTokens: 0, outputTokens: 0 }, 0],
    ['exact: 1000 in + 500 out at gpt-4o', gpt4o, { inputTokens: 1000, cachedTokens: 0, outputTokens: 500 }, 2_500 + 5_000],
    ['exact: 1M in + 1M out', gpt4o, { inputTokens: 1_000_000, cachedTokens: 0, outputTokens: 1_000_000 }, 12_500_000],
    ['cached tokens are part of input, at the cached price', gpt4o, { inputTokens: 1000, cachedTokens: 600, outputTokens: 0 }, 400 * 2.5 + 600 * 1.25],
    ['all cached', gpt4o, { inputTokens: 1000, cachedTokens: 1000, outputTokens: 100 }, 1_250 + 1_000],
    ['rounds up: one input token at gpt-4o-mini (0.15 µ$)', mini, { inputTokens: 1, cachedTokens: 0, outputTokens: 0 }, 1],
    // 2 × 0.15 + 1 × 0.075 + 1 × 0.6 = 0.975 → 1 (rounding each part up would make it 3)
    ['rounds up once, over the sum', mini, { inputTokens: 3, cachedTokens: 1, outputTokens: 1 }, 1],
    ['rounds up: 7 in + 3 out at gpt-4o', gpt4o, { inputTokens: 7, cachedTokens: 0, outputTokens: 3 }, 48], // 17.5 + 30
    ['cached beyond input is capped at input', gpt4o, { inputTokens: 100, cachedTokens: 500, outputTokens: 0 }, 125],
    ['negative / NaN numbers count as zero', gpt4o, { inputTokens: -5, cachedTokens: Number.NaN, outputTokens: 2 }, 20],
    ['free model', usd(0, 0, 0), { inputTokens: 123_456, cachedTokens: 0, outputTokens: 789 }, 0],
    // exact beyond 2^53 intermediate products: 10M output tokens of o1-pro = $6000
    ['large numbers stay exact', usd(150, 150, 600), { inputTokens: 0, cachedTokens: 0, outputTokens: 10_000_000 }, 6_000_000_000],
    ['large and odd', usd(150, 150, 600), { inputTokens: 12_345_677, cachedTokens: 0, outputTokens: 1 }, 1_851_851_550 + 600],
  ])('%s', (_label, price, usage, micros) => {
    expect(usageCostMicros(price, usage)).toBe(micros);
  });

  it('accepts the meter’s usage with reasoning tokens (already inside output)', () => {
    const usage = { inputTokens: 10, cachedTokens: 0, outputTokens: 100, reasoningTokens: 80 };
    expect(usageCostMicros(gpt4o, usage)).toBe(25 + 1_000);
  });
});

describe('outputCapOf', () => {
  const book = createPriceBook({ 'deepseek-chat': { input: 0.27, output: 1.1 } });
  it.each<[string, number]>([
    ['gpt-4o', 16_384],
    ['gpt-4o-mini-2024-07-18', 16_384],
    ['gpt-4.1', 32_768],
    ['gpt-4.1-nano-2025-04-14', 32_768],
    ['o1', 100_000],
    ['o3', 100_000],
    ['o4-mini', 100_000],
    ['gpt-5', 128_000],
    ['gpt-5-mini', 128_000],
    ['GPT-5-Nano', 128_000],
    ['gpt-4', 8_192],
    ['gpt-4-turbo', 4_096],
    ['gpt-3.5-turbo', 4_096],
    ['deepseek-chat', DEFAULT_OUTPUT_CAP],
    ['text-embedding-3-small', DEFAULT_OUTPUT_CAP],
    ['', DEFAULT_OUTPUT_CAP],
    ['constructor', DEFAULT_OUTPUT_CAP],
  ])('%s → %i', (model, cap) => {
    expect(book.outputCapOf(model)).toBe(cap);
  });

  it('defaults to 16k', () => {
    expect(DEFAULT_OUTPUT_CAP).toBe(16_384);
  });
});
