/**
 * Model prices (integer micro-dollars per million tokens) and output caps.
 *
 * Prices: the table below, in dollars per 1M tokens (input, cached input, output), copied from
 * OpenAI's pricing page (https://platform.openai.com/docs/pricing, standard tier, as of late 2025).
 * gpt-tokenizer 4.0.0 ships a model catalog with `price_data`, but its figures are wrong for many
 * current models (gpt-4o, gpt-4.1 and gpt-5 all appear at $10/$30, gpt-oss at $0.0005, the cached
 * price of o1/o3 sits under `cached_output`, and gpt-4o-mini, gpt-5-mini, o4-mini, the embedding
 * models and many more have none), so prices are not taken from it. Operators correct or add prices
 * with overrides from the config file.
 *
 * Output caps: gpt-tokenizer's catalog (`max_output_tokens`), which matches OpenAI's model pages.
 *
 * Anthropic's and Google's prices and caps: see anthropic-google-prices.ts. Their prices have more
 * token classes (cache writes for 5 minutes and for an hour) and a long-context tier.
 */
import * as catalog from 'gpt-tokenizer/models';
import { BoundedMemo } from '../util/bounded-memo.js';
import { ANTHROPIC_GOOGLE_MODELS, ANTHROPIC_GOOGLE_SNAPSHOTS, type ShippedModel } from './anthropic-google-prices.js';
import { globSpecificity, isModelGlob, modelGlobToRegExp, modelKeyProblem } from '../util/model-pattern.js';

/** Micro-dollars per 1M tokens of each token class, at one tier. */
export interface TokenRates {
  /** Prompt tokens neither read from nor written to a cache. */
  inputMicrosPerMillion: number;
  /** Prompt tokens read from a cache. */
  cachedInputMicrosPerMillion: number;
  /** Output tokens, reasoning (thinking) included. */
  outputMicrosPerMillion: number;
  /** Prompt tokens written to a cache for 5 minutes. Absent: the input price (no write surcharge). */
  cacheWriteMicrosPerMillion?: number;
  /** Prompt tokens written to a cache for an hour. Absent: the 5-minute write price. */
  cacheWrite1hMicrosPerMillion?: number;
}

/** The rates of every token of a request whose whole prompt is larger than `aboveInputTokens`. */
export interface LongContextRates extends TokenRates {
  aboveInputTokens: number;
}

export interface ModelPrice extends TokenRates {
  /** Absent: one tier, whatever the prompt's size. */
  longContext?: LongContextRates;
}

const costsNothing = (r: TokenRates): boolean =>
  r.inputMicrosPerMillion === 0 && r.cachedInputMicrosPerMillion === 0 && r.outputMicrosPerMillion === 0 && !r.cacheWriteMicrosPerMillion && !r.cacheWrite1hMicrosPerMillion;

/** Whether every token of the model costs nothing, at any prompt length (a local model, a free tier). */
export const isFree = (price: ModelPrice): boolean => costsNothing(price) && (price.longContext === undefined || costsNothing(price.longContext));

/** A price's rates in the config file: dollars per 1M tokens. */
export interface RatesOverride {
  input: number;
  /** Defaults to `input` (no caching discount). */
  cachedInput?: number;
  /** Defaults to `input`; embedding models produce no output tokens, so it does not matter there. */
  output?: number;
  /** 5-minute cache writes; defaults to `input`. */
  cacheWrite?: number;
  /** 1-hour cache writes; defaults to `cacheWrite`. */
  cacheWrite1h?: number;
}

/** A price in the config file (keyed by a model id or a glob such as `deepseek-*`): dollars per 1M tokens. */
export interface PriceOverride extends RatesOverride {
  /** Rates for every token of a request whose prompt is above `aboveInputTokens` (default 200,000). */
  longContext?: RatesOverride & { aboveInputTokens?: number };
}

export interface PriceBook {
  /** The price of a model, or null when neither the shipped table nor the overrides know it. */
  priceOf(model: string): ModelPrice | null;
  /**
   * Every model id the book prices by name (shipped ids, dated snapshots gpt-tokenizer's catalog
   * knows, overrides keyed by an id), with its price, sorted by id. Glob overrides price models
   * nobody can list, so they add none.
   */
  listed(): ReadonlyArray<readonly [model: string, price: ModelPrice]>;
  /** The most output tokens the model can produce: the default allowance without max_tokens. */
  outputCapOf(model: string): number;
}

/** Output allowance for a model the catalog does not know (gpt-4o's cap). */
export const DEFAULT_OUTPUT_CAP = 16_384;

/** Where an override's long-context tier starts when it does not say (Anthropic's and Google's threshold). */
export const DEFAULT_LONG_CONTEXT_ABOVE = 200_000;

/** [input, cached input, output] in dollars per 1M tokens; cached null = no caching discount. */
type DollarRow = readonly [input: number, cachedInput: number | null, output: number];

/** OpenAI list prices, standard tier (see the header). Dated snapshots resolve to their family. */
const SHIPPED_DOLLARS: Readonly<Record<string, DollarRow>> = {
  // GPT-5 family
  'gpt-5.2': [1.75, 0.175, 14],
  'gpt-5.2-chat-latest': [1.75, 0.175, 14],
  'gpt-5.2-pro': [21, null, 168],
  'gpt-5.1': [1.25, 0.125, 10],
  'gpt-5.1-chat-latest': [1.25, 0.125, 10],
  'gpt-5.1-codex': [1.25, 0.125, 10],
  'gpt-5.1-codex-mini': [0.25, 0.025, 2],
  'gpt-5': [1.25, 0.125, 10],
  'gpt-5-chat-latest': [1.25, 0.125, 10],
  'gpt-5-codex': [1.25, 0.125, 10],
  'gpt-5-mini': [0.25, 0.025, 2],
  'gpt-5-nano': [0.05, 0.005, 0.4],
  'gpt-5-pro': [15, null, 120],
  // GPT-4.1 / GPT-4.5 / GPT-4o
  'gpt-4.1': [2, 0.5, 8],
  'gpt-4.1-mini': [0.4, 0.1, 1.6],
  'gpt-4.1-nano': [0.1, 0.025, 0.4],
  'gpt-4.5-preview': [75, 37.5, 150],
  'gpt-4o': [2.5, 1.25, 10],
  'gpt-4o-2024-05-13': [5, null, 15],
  'gpt-4o-mini': [0.15, 0.075, 0.6],
  'chatgpt-4o-latest': [5, null, 15],
  // o-series reasoning models (reasoning tokens are billed as output)
  o1: [15, 7.5, 60],
  'o1-preview': [15, 7.5, 60],
  'o1-mini': [1.1, 0.55, 4.4],
  'o1-pro': [150, null, 600],
  o3: [2, 0.5, 8],
  'o3-pro': [20, null, 80],
  'o3-mini': [1.1, 0.55, 4.4],
  'o3-deep-research': [10, 2.5, 40],
  'o4-mini': [1.1, 0.275, 4.4],
  'o4-mini-deep-research': [2, 0.5, 8],
  'codex-mini-latest': [1.5, 0.375, 6],
  // legacy chat models
  'gpt-4-turbo': [10, null, 30],
  'gpt-4-turbo-preview': [10, null, 30],
  'gpt-4-1106-preview': [10, null, 30],
  'gpt-4-0125-preview': [10, null, 30],
  'gpt-4': [30, null, 60],
  'gpt-4-32k': [60, null, 120],
  'gpt-3.5-turbo': [0.5, null, 1.5],
  // embeddings (input only)
  'text-embedding-3-small': [0.02, null, 0],
  'text-embedding-3-large': [0.13, null, 0],
  'text-embedding-ada-002': [0.1, null, 0],
};

/**
 * Dollars to micro-dollars, exact for any price given to 6 decimals; finer prices round up so a
 * budget is never under-charged (float noise below a nano-dollar is dropped first).
 */
export function dollarsToMicros(dollars: number): number {
  return Math.ceil(Math.round(dollars * 1e9) / 1e3);
}

/** Rates from dollars; the cache-write rates only when given (absent ones fall back when priced, see TokenRates). */
const ratesFromDollars = (r: { input: number; cachedInput?: number | null; output: number; cacheWrite?: number; cacheWrite1h?: number }): TokenRates => ({
  inputMicrosPerMillion: dollarsToMicros(r.input),
  cachedInputMicrosPerMillion: dollarsToMicros(r.cachedInput ?? r.input),
  outputMicrosPerMillion: dollarsToMicros(r.output),
  ...(r.cacheWrite === undefined ? {} : { cacheWriteMicrosPerMillion: dollarsToMicros(r.cacheWrite) }),
  ...(r.cacheWrite1h === undefined ? {} : { cacheWrite1hMicrosPerMillion: dollarsToMicros(r.cacheWrite1h) }),
});

const priceFromDollars = (input: number, cachedInput: number | null | undefined, output: number): ModelPrice =>
  Object.freeze(ratesFromDollars({ input, cachedInput, output }));

/** A shipped Anthropic or Google model's price (frozen to the bottom: callers share it). */
const priceOfShipped = ({ outputCap: _cap, longContext, ...base }: ShippedModel): ModelPrice =>
  Object.freeze({
    ...ratesFromDollars(base),
    ...(longContext && { longContext: Object.freeze({ aboveInputTokens: longContext.aboveInputTokens, ...ratesFromDollars(longContext) }) }),
  });

const normalize = (model: unknown): string => (typeof model === 'string' ? model.trim().toLowerCase() : '');

/** A snapshot suffix: OpenAI's `-2024-07-18` or `-0613`, Anthropic's `-20250929`, Google's `-001`. */
const SNAPSHOT_SUFFIX = /^-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4})$/;

/**
 * Looks `model` up exactly, then as a dated snapshot of the longest known id it extends
 * (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`, never `gpt-4o`). Only a date suffix counts: a variant
 * such as `gpt-4o-audio-preview` is priced differently and must be listed (or overridden) itself.
 */
function resolve<T>(table: ReadonlyMap<string, T>, model: string): T | undefined {
  const exact = table.get(model);
  if (exact !== undefined) return exact;
  let best: T | undefined;
  let bestLength = -1;
  for (const [id, value] of table) {
    if (id.length > bestLength && model.startsWith(id) && SNAPSHOT_SUFFIX.test(model.slice(id.length))) {
      best = value;
      bestLength = id.length;
    }
  }
  return best;
}

const shippedPrices = new Map<string, ModelPrice>([
  ...Object.entries(SHIPPED_DOLLARS).map(([id, [input, cached, output]]): [string, ModelPrice] => [id, priceFromDollars(input, cached, output)]),
  ...Object.entries(ANTHROPIC_GOOGLE_MODELS).map(([id, model]): [string, ModelPrice] => [id, priceOfShipped(model)]),
]);

/** Output caps from gpt-tokenizer's model catalog (keys include dated snapshots), and Anthropic's and Google's. */
const catalogCaps = new Map<string, number>();
for (const [id, spec] of Object.entries(catalog as Record<string, unknown>)) {
  const cap = (spec as { max_output_tokens?: unknown } | null)?.max_output_tokens;
  if (typeof cap === 'number' && Number.isInteger(cap) && cap > 0) catalogCaps.set(id.toLowerCase(), cap);
}
/** Ids priced through a family, which `listed()` names besides the tables' own: gpt-tokenizer's catalog (dated snapshots included), Anthropic's and Google's snapshots. */
const snapshotIds = [...catalogCaps.keys(), ...ANTHROPIC_GOOGLE_SNAPSHOTS];
for (const [id, model] of Object.entries(ANTHROPIC_GOOGLE_MODELS)) catalogCaps.set(id, model.outputCap);

function checkDollars(model: string, field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`price override for "${model}": ${field} must be a non-negative number of dollars per 1M tokens`);
  }
}

/** Checks an override's rates (`at`: where they are, for messages) and turns them into micro-dollars. */
function ratesOfOverride(model: string, at: string, rates: RatesOverride | null | undefined): TokenRates {
  checkDollars(model, `${at}input`, rates?.input);
  const r = rates as RatesOverride;
  for (const field of ['cachedInput', 'output', 'cacheWrite', 'cacheWrite1h'] as const) {
    if (r[field] !== undefined) checkDollars(model, `${at}${field}`, r[field]);
  }
  return ratesFromDollars({ ...r, output: r.output ?? r.input });
}

/** An override as a price: its rates, and its long-context tier when it has one. */
function priceOfOverride(model: string, override: PriceOverride | null | undefined): ModelPrice {
  const base = ratesOfOverride(model, '', override);
  const long = (override as PriceOverride).longContext;
  if (long === undefined) return Object.freeze(base);
  if (long === null || typeof long !== 'object') throw new RangeError(`price override for "${model}": longContext must be an object`);
  const above = long.aboveInputTokens ?? DEFAULT_LONG_CONTEXT_ABOVE;
  if (!Number.isSafeInteger(above) || above < 1) {
    throw new RangeError(`price override for "${model}": longContext.aboveInputTokens must be a whole number of tokens, at least 1`);
  }
  return Object.freeze({ ...base, longContext: Object.freeze({ aboveInputTokens: above, ...ratesOfOverride(model, 'longContext.', long) }) });
}

interface PricePattern {
  regex: RegExp;
  specificity: number;
  price: ModelPrice;
}

/**
 * The price of a glob key that matches `model`: the most specific one (the most characters besides
 * `*`), the first listed on a tie. Patterns are kept most specific first, so the first match wins.
 */
const patternPrice = (patterns: readonly PricePattern[], model: string): ModelPrice | undefined =>
  patterns.find((p) => p.regex.test(model))?.price;

/**
 * The price book: shipped prices with `overrides` (dollars per 1M tokens, the config format) on top.
 * An override keyed by an id replaces a shipped price or adds a model; one keyed by a glob
 * (`deepseek-*`) prices every model it matches that has no price of its own. A model's price is,
 * in this order: its exact id's; a dated snapshot's family's (`gpt-4o-2024-08-06` → `gpt-4o`);
 * the most specific matching glob's. Ids and globs are case-insensitive. Throws a RangeError on a
 * key that names no model or a negative or non-numeric price.
 */
export function createPriceBook(overrides: Record<string, PriceOverride> = {}): PriceBook {
  const prices = new Map(shippedPrices);
  const patterns: PricePattern[] = [];
  for (const [rawId, override] of Object.entries(overrides)) {
    const keyProblem = modelKeyProblem(rawId);
    if (keyProblem !== null) throw new RangeError(`price override ${JSON.stringify(rawId)}: the key ${keyProblem}`);
    const id = normalize(rawId);
    const price = priceOfOverride(rawId, override);
    if (isModelGlob(id)) patterns.push({ regex: modelGlobToRegExp(id), specificity: globSpecificity(id), price });
    else prices.set(id, price);
  }
  patterns.sort((a, b) => b.specificity - a.specificity); // stable: the first listed stays first on a tie
  // Remembered per model id: one not listed as sent (a dated snapshot, or one with no price) would
  // otherwise be resolved by scanning the whole table on every request.
  const resolvedPrices = new BoundedMemo<string, ModelPrice | null>(1_000);
  const resolvedCaps = new BoundedMemo<string, number>(1_000);
  const priceOf = (model: string): ModelPrice | null => {
    const id = normalize(model);
    return resolve(prices, id) ?? patternPrice(patterns, id) ?? null;
  };
  const listed = (): Array<readonly [string, ModelPrice]> => {
    const found = new Map(prices);
    for (const id of snapshotIds) {
      const price = found.has(id) ? undefined : priceOf(id);
      if (price) found.set(id, price);
    }
    return [...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  };
  return {
    priceOf: (model) => resolvedPrices.through(model, priceOf),
    listed,
    outputCapOf: (model) => resolvedCaps.through(model, () => resolve(catalogCaps, normalize(model)) ?? DEFAULT_OUTPUT_CAP),
  };
}

/** The rates that price a request whose whole prompt is `inputTokens`: the long-context tier's above its threshold. */
export function ratesAt(price: ModelPrice, inputTokens: number): TokenRates {
  const long = price.longContext;
  return long !== undefined && inputTokens > long.aboveInputTokens ? long : price;
}

/** The token classes a request is charged for (see UpstreamUsage): cache reads and writes are parts of `inputTokens`. */
export interface PricedUsage {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  /** Absent: none. */
  cacheWriteTokens?: number;
  /** Part of `cacheWriteTokens`; absent: none. */
  cacheWrite1hTokens?: number;
}

/**
 * What a request cost, in integer micro-dollars rounded up once, over the sum. Each class at its
 * own price: the prompt's uncached part at the input price, cache reads at the cached price, cache
 * writes at the 5-minute or 1-hour write price; output (reasoning included) at the output price.
 * A prompt above the long-context threshold prices every token at that tier. Classes are clamped
 * so that they never add up to more than the prompt (reads first, then writes, then 1-hour writes
 * within writes): an upstream's inconsistent report is never charged above its whole prompt.
 */
export function usageCostMicros(price: ModelPrice, usage: PricedUsage): number {
  const whole = (n: number | undefined): bigint => BigInt(n !== undefined && Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0);
  const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
  const input = whole(usage.inputTokens);
  const cached = min(whole(usage.cachedTokens), input);
  const written = min(whole(usage.cacheWriteTokens), input - cached);
  const written1h = min(whole(usage.cacheWrite1hTokens), written);
  const rates = ratesAt(price, Number(input));
  const writeRate = rates.cacheWriteMicrosPerMillion ?? rates.inputMicrosPerMillion;
  const numerator =
    (input - cached - written) * whole(rates.inputMicrosPerMillion) +
    cached * whole(rates.cachedInputMicrosPerMillion) +
    (written - written1h) * whole(writeRate) +
    written1h * whole(rates.cacheWrite1hMicrosPerMillion ?? writeRate) +
    whole(usage.outputTokens) * whole(rates.outputMicrosPerMillion);
  return Number((numerator + 999_999n) / 1_000_000n);
}
