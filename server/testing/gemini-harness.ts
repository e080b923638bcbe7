import { GoogleGenAI, type ApiError } from '@google/genai';
import type { Config } from '../config/load.js';
import type { DefaultBudget } from '../config/schema.js';
import { startFakeGemini, type FakeGemini, type FakeGeminiOptions } from './fake-gemini.js';
import type { TokenCounter } from '../proxy/token-count.js';
import { countingAsTheFakes } from './counting-as-the-fakes.js';
import { listen, testService, userWithKey, type TestService } from './harness.js';

/** The Gemini upstream's own key: the only key the fake may ever see. */
export const UPSTREAM_GEMINI_KEY = 'AIza-upstream-secret';

/** Test prices (US dollars per 1M tokens), so that every token class shows in the cost. */
export const GEMINI_TEST_PRICE = { input: 0.3, cachedInput: 0.075, output: 2.5 };

export interface GeminiProxy {
  svc: TestService;
  fake: FakeGemini;
  /** Base URL of lobe-quota, e.g. http://127.0.0.1:PORT: what LobeChat's GOOGLE_PROXY_URL is set to. */
  url: string;
  alice: Awaited<ReturnType<typeof userWithKey>>;
  /** Every request lobe-quota received, as `METHOD /path?query`. */
  received: string[];
  /** @google/genai pointed at lobe-quota, as LobeChat's Google provider makes it (`httpOptions.baseUrl`). */
  client(key: string): GoogleGenAI;
  close(): Promise<void>;
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
  const svc = testService({
    tokens: options.tokens ?? countingAsTheFakes(),
    defaultBudgets: options.defaultBudgets ?? [],
    config: {
      upstreams: [{ name: 'google', api: 'gemini', baseUrl: fake.baseUrl, apiKey: 'upstreamKey' in options ? options.upstreamKey : UPSTREAM_GEMINI_KEY, models: options.models ?? ['gemini-*'] }],
      prices: { 'gemini-2.5-flash': GEMINI_TEST_PRICE },
      ...options.config,
    },
  });
  const received: string[] = [];
  const app = svc.app;
  // Hono's fetch takes the node server's bindings after the request: passed on as they come.
  const server = await listen(((request: Request, ...bindings: unknown[]) => {
    const url = new URL(request.url);
    received.push(`${request.method} ${url.pathname}${url.search}`);
    return (app.fetch as (request: Request, ...rest: unknown[]) => Response | Promise<Response>)(request, ...bindings);
  }) as (request: Request) => Response | Promise<Response>);
  const alice = await userWithKey(svc.store, 'alice', 'research');
  return {
    svc,
    fake,
    url: server.url,
    alice,
    received,
    client: (key) => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: server.url } }),
    async close() {
      await server.close();
      await svc.upstreams.close();
      await fake.close();
      await svc.store.close();
    },
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
