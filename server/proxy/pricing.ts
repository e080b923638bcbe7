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
 */
import * as catalog from 'gpt-tokenizer/models';
import { BoundedMemo } from '../util/bounded-memo.js';
import { globSpecificity, isModelGlob, modelGlobToRegExp, modelKeyProblem } from '../util/model-pattern.js';

export interface ModelPrice {
  inputMicrosPerMillion: number;
  cachedInputMicrosPerMillion: number;
  outputMicrosPerMillion: number;
}

/** A price in the config file (keyed by a model id or a glob such as `deepseek-*`): dollars per 1M tokens. */
export interface PriceOverride {
  input: number;
  /** Defaults to `input` (no caching discount). */
  cachedInput?: number;
  /** Defaults to `input`; embedding models produce no output tokens, so it does not matter there. */
  output?: number;
}

export interface PriceBook {
  /** The price of a model, or null when neither the shipped table nor the overrides know it. */
  priceOf(model: string): ModelPrice | null;
  /** The most output tokens the model can produce: the default allowance without max_tokens. */
  outputCapOf(model: string): number;
}

/** Output allowance for a model the catalog does not know (gpt-4o's cap). */
export const DEFAULT_OUTPUT_CAP = 16_384;

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

const priceFromDollars = (input: number, cachedInput: number | null | undefined, output: number): ModelPrice =>
  Object.freeze({
    inputMicrosPerMillion: dollarsToMicros(input),
    cachedInputMicrosPerMillion: dollarsToMicros(cachedInput ?? input),
    outputMicrosPerMillion: dollarsToMicros(output),
  });

const normalize = (model: unknown): string => (typeof model === 'string' ? model.trim().toLowerCase() : '');

/** A snapshot suffix: `-2024-07-18` or `-0613`. */
const SNAPSHOT_SUFFIX = /^-(?:\d{4}-\d{2}-\d{2}|\d{4})$/;

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

const shippedPrices = new Map<string, ModelPrice>(
  Object.entries(SHIPPED_DOLLARS).map(([id, [input, cached, output]]) => [id, priceFromDollars(input, cached, output)]),
);

/** Output caps from gpt-tokenizer's model catalog (keys include dated snapshots). */
const catalogCaps = new Map<string, number>();
for (const [id, spec] of Object.entries(catalog as Record<string, unknown>)) {
  const cap = (spec as { max_output_tokens?: unknown } | null)?.max_output_tokens;
  if (typeof cap === 'number' && Number.isInteger(cap) && cap > 0) catalogCaps.set(id.toLowerCase(), cap);
}

function checkDollars(model: string, field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`price override for "${model}": ${field} must be a non-negative number of dollars per 1M tokens`);
  }
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
    checkDollars(rawId, 'input', override?.input);
    if (override.cachedInput !== undefined) checkDollars(rawId, 'cachedInput', override.cachedInput);
    if (override.output !== undefined) checkDollars(rawId, 'output', override.output);
    const price = priceFromDollars(override.input, override.cachedInput, override.output ?? override.input);
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
  return {
    priceOf: (model) => resolvedPrices.through(model, priceOf),
    outputCapOf: (model) => resolvedCaps.through(model, () => resolve(catalogCaps, normalize(model)) ?? DEFAULT_OUTPUT_CAP),
  };
}

/**
 * What a request cost, in integer micro-dollars rounded up. Cached tokens are part of `inputTokens`
 * and are billed at the cached price; reasoning tokens are already part of `outputTokens`.
 */
export function usageCostMicros(
  price: ModelPrice,
  usage: { inputTokens: number; cachedTokens: number; outputTokens: number },
): number {
  const whole = (n: number): bigint => BigInt(Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0);
  const input = whole(usage.inputTokens);
  const cachedRaw = whole(usage.cachedTokens);
  const cached = cachedRaw < input ? cachedRaw : input;
  const numerator =
    (input - cached) * whole(price.inputMicrosPerMillion) +
    cached * whole(price.cachedInputMicrosPerMillion) +
    whole(usage.outputTokens) * whole(price.outputMicrosPerMillion);
  return Number((numerator + 999_999n) / 1_000_000n);
}
