import { GoogleGenAI, type ApiError } from '@google/genai';
import type { Config } from '../config/load.js';
import type { DefaultBudget } from '../config/schema.js';
import { startFakeGemini, type FakeGemini, type FakeGeminiOptions } from './fake-gemini.js';
import type { TokenCounter } from '../proxy/token-count.js';
import { countingAsTheFakes } from './counting-as-the-fakes.js';
import { serveInFrontOf, type ServerInFront } from './harness.js';

/** The Gemini upstream's own key: the only key the fake may ever see. */
export const UPSTREAM_GEMINI_KEY = 'AIza-upstream-secret';

/** Test prices (US dollars per 1M tokens), so that every token class shows in the cost. */
export const GEMINI_TEST_PRICE = { input: 0.3, cachedInput: 0.075, output: 2.5 };

/** `url` is lobe-quota's base URL: what LobeChat's GOOGLE_PROXY_URL is set to. */
export interface GeminiProxy extends ServerInFront {
  fake: FakeGemini;
  /** Every request lobe-quota received, as `METHOD /path?query`. */
  received: string[];
  /** @google/genai pointed at lobe-quota, as LobeChat's Google provider makes it (`httpOptions.baseUrl`). */
  client(key: string): GoogleGenAI;
}

/**
 * A real lobe-quota server on a free port in front of the fake Gemini upstream (`api: gemini`,
 * serving `gemini-*`), with one user (alice, in project "research") and her key, and a price for
 * gemini-2.5-flash. Its token counter counts as the fake does unless `tokens` is given.
 */
export async function startGeminiProxy(
  options: { defaultBudgets?: DefaultBudget[]; config?: Partial<Config>; fake?: FakeGeminiOptions; models?: string[]; /** The key lobe-quota is configured with (default: the right one). */ upstreamKey?: string; tokens?: TokenCounter } = {},
): Promise<GeminiProxy> {
  const fake = await startFakeGemini({ apiKey: UPSTREAM_GEMINI_KEY, ...options.fake });
  const received: string[] = [];
  const base = await serveInFrontOf(fake, {
    upstreams: [{ name: 'google', api: 'gemini', baseUrl: fake.baseUrl, apiKey: 'upstreamKey' in options ? options.upstreamKey : UPSTREAM_GEMINI_KEY, models: options.models ?? ['gemini-*'] }],
    defaultBudgets: options.defaultBudgets,
    config: { prices: { 'gemini-2.5-flash': GEMINI_TEST_PRICE }, ...options.config },
    tokens: options.tokens ?? countingAsTheFakes(),
    onRequest: (request) => {
      const url = new URL(request.url);
      received.push(`${request.method} ${url.pathname}${url.search}`);
    },
  });
  return {
    ...base,
    fake,
    received,
    client: (key) => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: base.url } }),
  };
}

/** Every item of an async iterable (a stream of chunks), once it has ended. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** Google's error object, as @google/genai carries it in its ApiError's message. */
export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: Array<{ reason: string; domain: string }> };
}

export const googleErrorOf = (error: unknown): GoogleErrorBody => JSON.parse((error as ApiError).message) as GoogleErrorBody;
