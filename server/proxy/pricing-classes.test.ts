import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { createPriceBook, ratesAt, usageCostMicros, type ModelPrice, type PricedUsage, type PriceOverride } from './pricing.js';

/** Micro-dollars per 1M tokens from dollars (the figures of the providers' pricing pages). */
const µ = (dollars: number): number => Math.round(dollars * 1e6);

const book = createPriceBook();
const priceOf = (model: string): ModelPrice => {
  const price = book.priceOf(model);
  if (price === null) throw new Error(`no price for ${model}`);
  return price;
};

/** A request's classes, every one that is not named being 0. */
const use = (u: Partial<PricedUsage>): PricedUsage => ({ inputTokens: 0, cachedTokens: 0, outputTokens: 0, ...u });

describe('shipped Anthropic prices: every token class, at the list price', () => {
  it.each<[string, [number, number, number, number, number]]>([
    // [input, 5-minute cache write, 1-hour cache write, cache hit, output]
    ['claude-opus-4-5', [5, 6.25, 10, 0.5, 25]],
    ['claude-opus-4-5-20251101', [5, 6.25, 10, 0.5, 25]],
    ['claude-opus-4-1', [15, 18.75, 30, 1.5, 75]],
    ['claude-opus-4-1-20250805', [15, 18.75, 30, 1.5, 75]],
    ['claude-opus-4-20250514', [15, 18.75, 30, 1.5, 75]],
    ['claude-sonnet-4-5', [3, 3.75, 6, 0.3, 15]],
    ['claude-sonnet-4-5-20250929', [3, 3.75, 6, 0.3, 15]],
    ['claude-sonnet-4-20250514', [3, 3.75, 6, 0.3, 15]],
    ['claude-haiku-4-5-20251001', [1, 1.25, 2, 0.1, 5]],
    ['claude-3-5-haiku-20241022', [0.8, 1, 1.6, 0.08, 4]],
    // The page's exception to 1.25× / 2× / 0.1×.
    ['claude-3-haiku-20240307', [0.25, 0.3, 0.5, 0.03, 1.25]],
  ])('%s', (model, [input, write5m, write1h, read, output]) => {
    expect(priceOf(model)).toMatchObject({
      inputMicrosPerMillion: µ(input),
      cacheWriteMicrosPerMillion: µ(write5m),
      cacheWrite1hMicrosPerMillion: µ(write1h),
      cachedInputMicrosPerMillion: µ(read),
      outputMicrosPerMillion: µ(output),
    });
  });

  it('Sonnet 4 and 4.5 carry the 1M-context tier above 200k prompt tokens; Opus and Haiku have none', () => {
    const tier = { aboveInputTokens: 200_000, inputMicrosPerMillion: µ(6), cacheWriteMicrosPerMillion: µ(7.5), cacheWrite1hMicrosPerMillion: µ(12), cachedInputMicrosPerMillion: µ(0.6), outputMicrosPerMillion: µ(22.5) };
    expect(priceOf('claude-sonnet-4-5').longContext).toEqual(tier);
    expect(priceOf('claude-sonnet-4-0').longContext).toEqual(tier);
    expect(priceOf('claude-opus-4-5').longContext).toBeUndefined();
    expect(priceOf('claude-haiku-4-5').longContext).toBeUndefined();
  });

  it.each<[string, string, string | null]>([
    ['a date the table does not list resolves to its family', 'claude-sonnet-4-5-20991231', 'claude-sonnet-4-5'],
    ['…to the longest family it extends', 'claude-opus-4-1-20991231', 'claude-opus-4-1'],
    ['a suffix that is not a date does not', 'claude-sonnet-4-5-thinking', null],
  ])('%s: %s', (_label, model, family) => {
    expect(book.priceOf(model)).toEqual(family === null ? null : book.priceOf(family));
  });

  it('output caps: the models’ own, so that a request without max_tokens is not cut at 16k', () => {
    expect(book.outputCapOf('claude-sonnet-4-5-20250929')).toBe(64_000);
    expect(book.outputCapOf('claude-opus-4-1')).toBe(32_000);
    expect(book.outputCapOf('claude-3-5-haiku-20241022')).toBe(8_192);
    expect(book.outputCapOf('gemini-2.5-pro')).toBe(65_536);
    expect(book.outputCapOf('gemini-2.0-flash-001')).toBe(8_192);
  });
});

describe('shipped Google prices: input, context-cache reads, output (thinking included), long prompts', () => {
  it.each<[string, [number, number, number], [number, number, number] | null]>([
    ['gemini-3-pro-preview', [2, 0.2, 12], [4, 0.4, 18]],
    ['gemini-2.5-pro', [1.25, 0.125, 10], [2.5, 0.25, 15]],
    ['gemini-2.5-flash', [0.3, 0.03, 2.5], null],
    ['gemini-2.5-flash-lite', [0.1, 0.01, 0.4], null],
    ['gemini-2.0-flash', [0.1, 0.025, 0.4], null],
    ['gemini-2.0-flash-001', [0.1, 0.025, 0.4], null],
    ['gemini-2.0-flash-002', [0.1, 0.025, 0.4], null], // a version the table does not list
  ])('%s', (model, [input, cached, output], long) => {
    const price = priceOf(model);
    expect(price).toMatchObject({ inputMicrosPerMillion: µ(input), cachedInputMicrosPerMillion: µ(cached), outputMicrosPerMillion: µ(output) });
    // Writing a Gemini cache is billed as input: no write rate of its own.
    expect(price.cacheWriteMicrosPerMillion).toBeUndefined();
    expect(price.longContext).toEqual(
      long === null ? undefined : { aboveInputTokens: 200_000, inputMicrosPerMillion: µ(long[0]), cachedInputMicrosPerMillion: µ(long[1]), outputMicrosPerMillion: µ(long[2]) },
    );
  });
});

describe('usageCostMicros: each class at its own price', () => {
  const sonnet = priceOf('claude-sonnet-4-5');

  it.each<[string, Partial<PricedUsage>, number]>([
    // 1,000 tokens of a class at Sonnet 4.5: $3, $0.30, $3.75, $6, $15 per 1M → µ$ per 1,000 tokens.
    ['uncached input', { inputTokens: 1_000 }, 3_000],
    ['cache reads', { inputTokens: 1_000, cachedTokens: 1_000 }, 300],
    ['5-minute cache writes', { inputTokens: 1_000, cacheWriteTokens: 1_000 }, 3_750],
    ['1-hour cache writes', { inputTokens: 1_000, cacheWriteTokens: 1_000, cacheWrite1hTokens: 1_000 }, 6_000],
    ['output', { outputTokens: 1_000 }, 15_000],
    [
      'all of them in one prompt: 1,000 uncached + 1,000 read + 1,000 written for 5 minutes + 1,000 for an hour, 1,000 out',
      { inputTokens: 4_000, cachedTokens: 1_000, cacheWriteTokens: 2_000, cacheWrite1hTokens: 1_000, outputTokens: 1_000 },
      3_000 + 300 + 3_750 + 6_000 + 15_000,
    ],
    // 3 × 3 + 1 × 0.3 + 1 × 3.75 + 1 × 6 + 1 × 15 = 34.05 → 35: rounded up once, over the sum.
    ['rounds up once', { inputTokens: 6, cachedTokens: 1, cacheWriteTokens: 2, cacheWrite1hTokens: 1, outputTokens: 1 }, 35],
    // An upstream's inconsistent report is never charged above its whole prompt.
    ['writes beyond the prompt’s uncached part are clamped to it', { inputTokens: 1_000, cachedTokens: 600, cacheWriteTokens: 900 }, 600 * 0.3 + 400 * 3.75],
    ['1-hour writes beyond the writes are clamped to them', { inputTokens: 1_000, cacheWriteTokens: 500, cacheWrite1hTokens: 800 }, 500 * 3 + 500 * 6],
    ['negative and NaN counts are zero', { inputTokens: 1_000, cacheWriteTokens: -5, cacheWrite1hTokens: Number.NaN }, 3_000],
  ])('%s', (_label, usage, micros) => {
    expect(usageCostMicros(sonnet, use(usage))).toBe(micros);
  });

  it('a price without write rates charges writes at input, and 1-hour writes at the 5-minute rate', () => {
    const gpt4o = priceOf('gpt-4o');
    expect(usageCostMicros(gpt4o, use({ inputTokens: 1_000, cacheWriteTokens: 1_000, cacheWrite1hTokens: 500 }))).toBe(2_500);
    const fiveMinuteOnly = createPriceBook({ m: { input: 2, cacheWrite: 4, output: 8 } }).priceOf('m') as ModelPrice;
    expect(usageCostMicros(fiveMinuteOnly, use({ inputTokens: 1_000, cacheWriteTokens: 1_000, cacheWrite1hTokens: 500 }))).toBe(4_000);
  });
});

describe('usageCostMicros: the long-context tier prices every token of a prompt above its threshold', () => {
  const sonnet = priceOf('claude-sonnet-4-5');
  const gemini25Pro = priceOf('gemini-2.5-pro');

  it.each<[string, ModelPrice, Partial<PricedUsage>, number]>([
    ['Sonnet 4.5 at a 250k prompt: $6 in, $22.50 out', sonnet, { inputTokens: 250_000, outputTokens: 2_000 }, 1_500_000 + 45_000],
    [
      'Sonnet 4.5 at 250k with every class: reads $0.60, 5-minute writes $7.50, 1-hour writes $12',
      sonnet,
      { inputTokens: 250_000, cachedTokens: 100_000, cacheWriteTokens: 60_000, cacheWrite1hTokens: 50_000, outputTokens: 1_000 },
      90_000 * 6 + 100_000 * 0.6 + 10_000 * 7.5 + 50_000 * 12 + 1_000 * 22.5,
    ],
    ['exactly at the threshold: still the base tier', sonnet, { inputTokens: 200_000, outputTokens: 1_000 }, 600_000 + 15_000],
    ['one token above: all of them at the tier', sonnet, { inputTokens: 200_001, outputTokens: 1_000 }, 1_200_006 + 22_500],
    // The threshold counts the whole prompt, cache reads included (as Anthropic and Google count it).
    ['cache reads count toward the threshold', sonnet, { inputTokens: 200_001, cachedTokens: 200_000 }, 6 + 120_000],
    ['Gemini 2.5 Pro at 300k, 100k of it from the context cache', gemini25Pro, { inputTokens: 300_000, cachedTokens: 100_000, outputTokens: 1_000 }, 500_000 + 25_000 + 15_000],
    ['Gemini 2.5 Pro below 200k', gemini25Pro, { inputTokens: 100_000, cachedTokens: 50_000, outputTokens: 1_000 }, 62_500 + 6_250 + 10_000],
  ])('%s', (_label, price, usage, micros) => {
    expect(usageCostMicros(price, use(usage))).toBe(micros);
  });

  it('ratesAt: the tier for the prompt as counted (what admission quotes and holds)', () => {
    expect(ratesAt(sonnet, 200_000).inputMicrosPerMillion).toBe(µ(3));
    expect(ratesAt(sonnet, 200_001).inputMicrosPerMillion).toBe(µ(6));
    expect(ratesAt(sonnet, 200_001).outputMicrosPerMillion).toBe(µ(22.5));
    expect(ratesAt(priceOf('claude-opus-4-5'), 900_000).inputMicrosPerMillion).toBe(µ(5));
  });
});

describe('price overrides with cache writes and a long-context tier', () => {
  it('takes cacheWrite, cacheWrite1h and longContext; the tier starts above 200k unless it says', () => {
    const overrides: Record<string, PriceOverride> = {
      'my-claude': { input: 2, cachedInput: 0.2, cacheWrite: 2.5, cacheWrite1h: 4, output: 10, longContext: { input: 4, output: 15 } },
      'my-gemini': { input: 1, output: 5, longContext: { aboveInputTokens: 128_000, input: 2, cachedInput: 0.5, output: 10 } },
    };
    const custom = createPriceBook(overrides);
    expect(custom.priceOf('my-claude')).toEqual({
      inputMicrosPerMillion: µ(2),
      cachedInputMicrosPerMillion: µ(0.2),
      cacheWriteMicrosPerMillion: µ(2.5),
      cacheWrite1hMicrosPerMillion: µ(4),
      outputMicrosPerMillion: µ(10),
      // The tier's own rates default from its own input.
      longContext: { aboveInputTokens: 200_000, inputMicrosPerMillion: µ(4), cachedInputMicrosPerMillion: µ(4), outputMicrosPerMillion: µ(15) },
    });
    const gemini = custom.priceOf('my-gemini') as ModelPrice;
    expect(usageCostMicros(gemini, use({ inputTokens: 128_001, cachedTokens: 28_001 }))).toBe(200_000 + 14_001);
  });

  it('an override replaces a shipped price whole (no tier or write rate of the shipped one survives), for the snapshots priced through it too', () => {
    const custom = createPriceBook({ 'claude-sonnet-4-5': { input: 1, output: 2 } });
    expect(custom.priceOf('claude-sonnet-4-5-20250929')).toEqual(custom.priceOf('claude-sonnet-4-5'));
    expect(custom.priceOf('claude-sonnet-4-5')).toEqual({ inputMicrosPerMillion: µ(1), cachedInputMicrosPerMillion: µ(1), outputMicrosPerMillion: µ(2) });
  });

  it.each<[string, unknown, RegExp]>([
    ['a negative cacheWrite', { input: 1, cacheWrite: -1 }, /cacheWrite must be a non-negative number/],
    ['a NaN cacheWrite1h', { input: 1, cacheWrite1h: Number.NaN }, /cacheWrite1h must be a non-negative number/],
    ['a long context that is not an object', { input: 1, longContext: null }, /longContext must be an object/],
    ['a long context without input', { input: 1, longContext: { output: 2 } }, /longContext\.input must be a non-negative number/],
    ['a negative long-context output', { input: 1, longContext: { input: 2, output: -2 } }, /longContext\.output must be a non-negative number/],
    ['a threshold of 0 tokens', { input: 1, longContext: { aboveInputTokens: 0, input: 2 } }, /aboveInputTokens must be a whole number/],
    ['a fractional threshold', { input: 1, longContext: { aboveInputTokens: 1.5, input: 2 } }, /aboveInputTokens must be a whole number/],
  ])('rejects %s with a RangeError naming the field', (_label, override, message) => {
    expect(() => createPriceBook({ bad: override as PriceOverride })).toThrow(RangeError);
    expect(() => createPriceBook({ bad: override as PriceOverride })).toThrow(message);
  });
});

describe('the config file’s prices: cacheWrite, cacheWrite1h and longContext', () => {
  const load = (prices: unknown) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-prices-'));
    try {
      fs.writeFileSync(path.join(dir, DEFAULT_CONFIG_FILE), JSON.stringify({ prices }));
      return loadConfig({ env: {}, cwd: dir });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it('loads them beside input, cachedInput and output, the tier starting above 200k by default', () => {
    const result = load({ 'my-claude': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6, output: 15, longContext: { input: 6, output: 22.5 } } });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.prices['my-claude']).toEqual({
      input: 3,
      cachedInput: 0.3,
      cacheWrite: 3.75,
      cacheWrite1h: 6,
      output: 15,
      longContext: { aboveInputTokens: 200_000, input: 6, output: 22.5 },
    });
    // What the config holds is what the price book takes.
    expect(createPriceBook(result.config.prices).priceOf('my-claude')).toEqual({
      ...ratesOf(3, 0.3, 3.75, 6, 15),
      longContext: { aboveInputTokens: 200_000, inputMicrosPerMillion: µ(6), cachedInputMicrosPerMillion: µ(6), outputMicrosPerMillion: µ(22.5) },
    });
  });

  it.each<[string, unknown, RegExp]>([
    ['a negative cacheWrite', { m: { input: 1, cacheWrite: -1 } }, /prices\.m\.cacheWrite: /],
    ['a string cacheWrite1h', { m: { input: 1, cacheWrite1h: '2' } }, /prices\.m\.cacheWrite1h: /],
    ['a long-context tier without output (it would silently price output at 0)', { m: { input: 1, longContext: { input: 2 } } }, /prices\.m\.longContext\.output: /],
    ['a threshold that is not a whole number', { m: { input: 1, longContext: { aboveInputTokens: 1.5, input: 2, output: 2 } } }, /prices\.m\.longContext\.aboveInputTokens: /],
    ['an unknown field in the tier', { m: { input: 1, longContext: { input: 2, output: 2, cacheRead: 1 } } }, /prices\.m\.longContext: .*cacheRead/],
  ])('names %s as a problem of its field', (_label, prices, problem) => {
    const result = load(prices);
    if (result.ok) throw new Error('expected problems');
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(problem);
  });
});

/** A price's base rates from dollars: input, cache read, 5-minute write, 1-hour write, output. */
function ratesOf(input: number, cachedInput: number, cacheWrite: number, cacheWrite1h: number, output: number) {
  return {
    inputMicrosPerMillion: µ(input),
    cachedInputMicrosPerMillion: µ(cachedInput),
    cacheWriteMicrosPerMillion: µ(cacheWrite),
    cacheWrite1hMicrosPerMillion: µ(cacheWrite1h),
    outputMicrosPerMillion: µ(output),
  };
}

describe('listed: the ids the book prices by name', () => {
  it('names shipped ids, catalog snapshots and overrides keyed by an id, sorted; never a glob', () => {
    const listed = new Map(createPriceBook({ 'my-model': { input: 1 }, 'deepseek-*': { input: 1 } }).listed());
    expect(listed.get('claude-sonnet-4-5-20250929')).toEqual(book.priceOf('claude-sonnet-4-5'));
    expect(listed.get('gemini-2.5-pro')).toEqual(book.priceOf('gemini-2.5-pro'));
    expect(listed.get('gpt-4o-2024-08-06')).toEqual(book.priceOf('gpt-4o'));
    expect(listed.has('my-model')).toBe(true);
    expect([...listed.keys()].some((id) => id.includes('*'))).toBe(false);
    const ids = [...listed.keys()];
    expect(ids).toEqual([...ids].sort());
  });
});
