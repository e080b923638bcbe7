import { Hono } from 'hono';
import { z } from 'zod';
import type { ModelPrice, PriceBook } from './pricing.js';
import type { UpstreamApi } from './upstream-api.js';
import type { Upstream } from './upstreams.js';

/**
 * `GET /api/pricing` in New API's shape (QuantumNous/new-api, `controller/pricing.go` and
 * `model/pricing.go`), so that LobeChat's New API provider shows our prices in its model list.
 *
 * How LobeChat reads it (packages/model-runtime/src/providers/newapi/index.ts, LobeHub 2.1.26): it
 * fetches `${base}/api/pricing`, keeps `data` when `success` is true, and for each model of
 * `/v1/models` with an entry of the same `model_name` and `quota_type` 0 shows
 * input = `model_ratio` × 2 and output = input × (`completion_ratio` || 1), in dollars per 1M tokens
 * (New API's ratio 1 is $0.002 per 1K tokens). So `model_ratio` is our input price ÷ 2 and
 * `completion_ratio` our output price ÷ input, chosen so that LobeChat's product gives our price
 * back exactly. `cache_ratio` and `create_cache_ratio` are New API's cache read and 5-minute cache
 * write prices as fractions of input, for clients that read them (LobeChat does not).
 *
 * What cannot be said in this shape: a long-context tier (the base tier is shown), 1-hour cache
 * writes, a model whose input is free (ratio 0, which LobeChat shows as no price), and a free
 * output beside a priced input (LobeChat reads completion_ratio 0 as 1: embedding models show
 * their input price as output too).
 */

/** New API's endpoint types (constant/endpoint_type.go) that lobe-quota serves. */
const endpointTypeSchema = z.enum(['anthropic', 'gemini', 'openai', 'openai-response', 'embeddings']);
const endpointSchema = z.strictObject({ path: z.string(), method: z.literal('POST') });

/** One model's price, as New API's `model.Pricing` serializes it (the fields lobe-quota fills). */
export const newApiPricingEntrySchema = z.strictObject({
  model_name: z.string(),
  quota_type: z.literal(0).describe('0: priced per token (New API’s 1, per call, is not used)'),
  model_ratio: z.number().min(0).describe('input US dollars per 1M tokens ÷ 2 (New API’s ratio 1 is $0.002 per 1K tokens)'),
  model_price: z.literal(0).describe('a per-call price: none'),
  owner_by: z.string(),
  completion_ratio: z.number().min(0).describe('output price ÷ input price'),
  cache_ratio: z.number().min(0).optional().describe('cache read price ÷ input price'),
  create_cache_ratio: z.number().min(0).optional().describe('5-minute cache write price ÷ input price'),
  enable_groups: z.array(z.string()),
  supported_endpoint_types: z.array(endpointTypeSchema).describe('the formats the upstreams serve this model in, native ones first'),
});

export const newApiPricingAnswerSchema = z.strictObject({
  success: z.literal(true),
  message: z.string(),
  data: z.array(newApiPricingEntrySchema),
  vendors: z.array(z.unknown()).max(0).describe('none: lobe-quota names no vendors'),
  group_ratio: z.record(z.string(), z.number()),
  usable_group: z.record(z.string(), z.string()),
  supported_endpoint: z.partialRecord(endpointTypeSchema, endpointSchema).describe('where each endpoint type is served'),
  auto_groups: z.array(z.string()),
});

type EndpointType = z.infer<typeof endpointTypeSchema>;
export type NewApiPricingEntry = z.infer<typeof newApiPricingEntrySchema>;
export type NewApiPricingAnswer = z.infer<typeof newApiPricingAnswerSchema>;

/** Where each is served (New API's defaults, common/endpoint_defaults.go, which are also ours). */
const ENDPOINTS: Readonly<Record<EndpointType, { path: string; method: 'POST' }>> = {
  anthropic: { path: '/v1/messages', method: 'POST' },
  gemini: { path: '/v1beta/models/{model}:generateContent', method: 'POST' },
  openai: { path: '/v1/chat/completions', method: 'POST' },
  'openai-response': { path: '/v1/responses', method: 'POST' },
  embeddings: { path: '/v1/embeddings', method: 'POST' },
};

/** Native formats first: New API's clients take the first type as the one to prefer. */
const ENDPOINT_ORDER: readonly EndpointType[] = ['anthropic', 'gemini', 'openai', 'openai-response', 'embeddings'];

/**
 * The endpoint types an upstream of `api` gives `model`. Ollama's API has no New API type (LobeChat's
 * New API provider cannot send a request there), so its upstreams give none.
 */
function endpointTypes(api: UpstreamApi, model: string): EndpointType[] {
  switch (api) {
    case 'anthropic':
      return ['anthropic'];
    case 'gemini':
      return ['gemini'];
    case 'openai':
      return /embed/i.test(model) ? ['embeddings'] : ['openai', 'openai-response'];
    case 'ollama':
      return [];
  }
}

/** Everyone is in New API's one default group, at ratio 1: our prices are the prices. */
const GROUP = 'default';

/** The float next to `x` towards +∞ (`direction` 1) or −∞ (−1), for finite positive x. */
function nextFloat(x: number, direction: 1 | -1): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(direction));
  return view.getFloat64(0);
}

/**
 * The ratio r for which `of × r` is `target` in floating point, as LobeChat computes it: of the
 * quotient and its nearest neighbours, those whose product is exact, the one that reads shortest
 * (0.1 rather than 0.09999999999999999, for people reading the JSON); the quotient when none is.
 */
function exactRatio(of: number, target: number): number {
  const quotient = target / of;
  if (!Number.isFinite(quotient) || quotient === 0) return quotient;
  const up = nextFloat(quotient, 1);
  const down = nextFloat(quotient, -1);
  const exact = [quotient, up, down, nextFloat(up, 1), nextFloat(down, -1)].filter((r) => of * r === target);
  return exact.sort((a, b) => String(a).length - String(b).length)[0] ?? quotient;
}

const dollarsPerMillion = (micros: number): number => micros / 1_000_000;

/** One model's entry: its base tier as New API ratios. */
export function pricingEntry(model: string, price: ModelPrice, types: EndpointType[]): NewApiPricingEntry {
  const input = dollarsPerMillion(price.inputMicrosPerMillion);
  const ratioOf = (micros: number): number => (input > 0 ? exactRatio(input, dollarsPerMillion(micros)) : 0);
  return {
    model_name: model,
    quota_type: 0,
    // × 2 in LobeChat is exact in binary floating point: ÷ 2 here gives `input` back unchanged.
    model_ratio: input / 2,
    model_price: 0,
    owner_by: '',
    completion_ratio: ratioOf(price.outputMicrosPerMillion),
    ...(input > 0 && { cache_ratio: ratioOf(price.cachedInputMicrosPerMillion) }),
    ...(input > 0 && price.cacheWriteMicrosPerMillion !== undefined && { create_cache_ratio: ratioOf(price.cacheWriteMicrosPerMillion) }),
    enable_groups: [GROUP],
    supported_endpoint_types: types,
  };
}

/**
 * The answer: every model the price book names (see PriceBook.listed) that an upstream serves in
 * a format New API has a type for, with the types of every upstream that serves it.
 */
export function newApiPricing(prices: Pick<PriceBook, 'listed'>, upstreams: readonly Pick<Upstream, 'api' | 'serves'>[]): NewApiPricingAnswer {
  const data: NewApiPricingEntry[] = [];
  const used = new Set<EndpointType>();
  for (const [model, price] of prices.listed()) {
    const served = new Set(upstreams.filter((u) => u.serves(model)).flatMap((u) => endpointTypes(u.api, model)));
    if (served.size === 0) continue;
    const types = ENDPOINT_ORDER.filter((t) => served.has(t));
    for (const t of types) used.add(t);
    data.push(pricingEntry(model, price, types));
  }
  return {
    success: true,
    message: '',
    data,
    vendors: [],
    group_ratio: { [GROUP]: 1 },
    usable_group: { [GROUP]: 'default' },
    supported_endpoint: Object.fromEntries(ENDPOINT_ORDER.filter((t) => used.has(t)).map((t) => [t, ENDPOINTS[t]])),
    auto_groups: [],
  };
}

/**
 * `GET /api/pricing`. Public, as New API's is: prices are not secret, and LobeChat calls it two
 * ways — its server with `Authorization: Bearer <the provider's key>`, its browser through
 * LobeChat's own `/webapi/proxy`, which forwards no key. So a key is neither needed nor checked
 * (checking one would also make this route a way to test keys). The answer depends only on the
 * config, so it is built once.
 */
export function newApiPricingRoutes(services: { upstreams: { list: readonly Upstream[] } }, prices: PriceBook) {
  let answer: NewApiPricingAnswer | null = null;
  return new Hono().get('/api/pricing', (c) => {
    answer ??= newApiPricing(prices, services.upstreams.list);
    c.header('cache-control', 'public, max-age=60');
    return c.json(answer);
  });
}
