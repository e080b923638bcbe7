import { afterAll, describe, expect, it } from 'vitest';
import type { UpstreamConfig } from './upstreams.js';
import { testService } from '../testing/harness.js';
import { newApiPricingAnswerSchema, pricingEntry, type NewApiPricingAnswer, type NewApiPricingEntry } from './new-api-pricing.js';
import { createPriceBook } from './pricing.js';

/**
 * The layout issue 14 describes: Claude and Gemini natively, Claude again through Anthropic's
 * OpenAI-compatible endpoint (LobeChat sends aliases it does not know as chat completions), OpenAI's
 * chat and embedding models, and a local Ollama. No request goes upstream here.
 */
const UPSTREAMS: UpstreamConfig[] = [
  { name: 'anthropic', api: 'anthropic', baseUrl: 'https://api.anthropic.com', apiKey: 'sk-ant', models: ['claude-*'] },
  { name: 'google', api: 'gemini', baseUrl: 'https://generativelanguage.googleapis.com', apiKey: 'g', models: ['gemini-*'] },
  { name: 'anthropic-compat', baseUrl: 'https://api.anthropic.com/v1', apiKey: 'sk-ant', models: ['claude-*'] },
  { name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk', models: ['gpt-*', 'text-embedding-*'] },
  { name: 'local', api: 'ollama', baseUrl: 'http://127.0.0.1:11434', apiKey: undefined, models: ['llama*'] },
];

const svc = testService({ config: { upstreams: UPSTREAMS, prices: { 'llama3.1:8b': { input: 0, output: 0 }, 'my-gpt': { input: 1, output: 3 } } } });
afterAll(async () => {
  await svc.upstreams.close();
  await svc.store.close();
});

async function pricing(headers: Record<string, string> = {}): Promise<{ status: number; body: NewApiPricingAnswer }> {
  const response = await svc.app.request('/api/pricing', { headers });
  return { status: response.status, body: (await response.json()) as NewApiPricingAnswer };
}

const entryOf = (answer: NewApiPricingAnswer, model: string): NewApiPricingEntry | undefined => answer.data.find((e) => e.model_name === model);

describe('GET /api/pricing: New API’s shape', () => {
  it('answers without a key, and with any bearer (LobeChat’s server sends its provider key, its browser none)', async () => {
    const anonymous = await pricing();
    expect(anonymous.status).toBe(200);
    expect(newApiPricingAnswerSchema.parse(anonymous.body)).toEqual(anonymous.body);
    expect(anonymous.body).toMatchObject({ success: true, group_ratio: { default: 1 } });
    expect((await pricing({ authorization: 'Bearer lq-not-a-key-we-issued' })).body).toEqual(anonymous.body);
  });

  it('lists the priced models an upstream serves, with the formats it serves them in, native first', async () => {
    const { body } = await pricing();
    expect(entryOf(body, 'claude-sonnet-4-5-20250929')?.supported_endpoint_types).toEqual(['anthropic', 'openai', 'openai-response']);
    expect(entryOf(body, 'claude-sonnet-4-5')?.supported_endpoint_types).toEqual(['anthropic', 'openai', 'openai-response']);
    expect(entryOf(body, 'gemini-2.5-pro')?.supported_endpoint_types).toEqual(['gemini']);
    expect(entryOf(body, 'gpt-4o')?.supported_endpoint_types).toEqual(['openai', 'openai-response']);
    expect(entryOf(body, 'gpt-4o-2024-08-06')?.supported_endpoint_types).toEqual(['openai', 'openai-response']);
    expect(entryOf(body, 'text-embedding-3-small')?.supported_endpoint_types).toEqual(['embeddings']);
    expect(body.supported_endpoint).toEqual({
      anthropic: { path: '/v1/messages', method: 'POST' },
      gemini: { path: '/v1beta/models/{model}:generateContent', method: 'POST' },
      openai: { path: '/v1/chat/completions', method: 'POST' },
      'openai-response': { path: '/v1/responses', method: 'POST' },
      embeddings: { path: '/v1/embeddings', method: 'POST' },
    });
  });

  it('leaves out what no upstream serves, what only Ollama serves (New API has no such format), and what has no price', async () => {
    const { body } = await pricing();
    const names = body.data.map((e) => e.model_name);
    expect(names).not.toContain('o3'); // priced, but no upstream serves o-series models here
    expect(names).not.toContain('my-gpt'); // priced by an override, but no upstream serves it
    expect(names).not.toContain('llama3.1:8b');
    expect(names.every((n) => !n.includes('*'))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });

  it('gives our prices back exactly through LobeChat’s arithmetic: input = model_ratio × 2, output = input × completion_ratio', async () => {
    const { body } = await pricing();
    const prices = createPriceBook();
    expect(body.data.length).toBeGreaterThan(30);
    for (const entry of body.data) {
      const price = prices.priceOf(entry.model_name);
      if (price === null) throw new Error(`${entry.model_name} listed without a price`);
      const input = entry.model_ratio * 2;
      expect(input, entry.model_name).toBe(price.inputMicrosPerMillion / 1e6);
      expect(input * entry.completion_ratio, entry.model_name).toBe(price.outputMicrosPerMillion / 1e6);
      expect(input * (entry.cache_ratio ?? Number.NaN), entry.model_name).toBe(price.cachedInputMicrosPerMillion / 1e6);
    }
    expect(entryOf(body, 'claude-sonnet-4-5')).toMatchObject({ quota_type: 0, model_ratio: 1.5, completion_ratio: 5, cache_ratio: expect.closeTo(0.1, 12), create_cache_ratio: 1.25, model_price: 0 });
    expect(entryOf(body, 'gemini-2.5-pro')).not.toHaveProperty('create_cache_ratio');
  });
});

describe('pricingEntry: the ratios of one price', () => {
  it.each<[string, [number, number, number]]>([
    // Prices whose output ÷ input is not exact in binary floating point.
    ['gpt-4o-mini', [0.15, 0.075, 0.6]],
    ['gemini-2.5-flash', [0.3, 0.03, 2.5]],
    ['odd', [0.27, 0.07, 1.1]],
    ['odder', [0.14, 0.014, 0.28]],
  ])('%s: LobeChat’s products give the prices back to the last bit', (model, [input, cached, output]) => {
    const entry = pricingEntry(model, { inputMicrosPerMillion: input * 1e6, cachedInputMicrosPerMillion: cached * 1e6, outputMicrosPerMillion: output * 1e6 }, ['openai']);
    expect(entry.model_ratio * 2).toBe(input);
    expect(entry.model_ratio * 2 * entry.completion_ratio).toBe(output);
  });

  it('a free input: ratio 0 (LobeChat then shows no price rather than a wrong one)', () => {
    const entry = pricingEntry('local', { inputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0, outputMicrosPerMillion: 0 }, ['openai']);
    expect(entry).toMatchObject({ model_ratio: 0, completion_ratio: 0 });
    expect(entry).not.toHaveProperty('cache_ratio');
  });
});
