import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../clock.js';
import { renderError } from '../http/errors.js';
import { Metrics } from '../metrics/metrics.js';
import { StoreUnavailableError } from '../store/store-unavailable.js';
import { memoryStore, T0, testConfig, userWithKey } from '../testing/harness.js';
import type { ProxyServices } from './admit-request.js';
import type { Dialect } from './dialects/dialect.js';
import { openAIChat, type ChatRequest } from './dialects/openai-chat.js';
import type { ChatStreamState } from './dialects/openai-chat-stream.js';
import { meteredRoute } from './metered-route.js';
import { createPriceBook } from './pricing.js';
import { RateLimiter } from './rate-limiter.js';
import { createTokenCounter } from './token-count.js';
import { Upstreams } from './upstreams.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

/**
 * The error shape is the dialect's, not the path's: a dialect with a shape of its own (Anthropic's,
 * here) served under `/v1/messages` answers every way a request can fail in that shape, though the
 * app's fallback answers `/v1/*` in OpenAI's.
 */
const messagesDialect: Dialect<ChatRequest, ChatStreamState> = {
  ...openAIChat,
  name: 'messages',
  errorBody: (error) => ({ type: 'error', error: { type: error.type, message: error.message } }),
  refusalBody: (refusal) => ({ type: 'error', error: { type: refusal.kind === 'quota' ? 'quota_exceeded' : 'rate_limit_error', message: refusal.message } }),
  // No chat answers in this format: a refusal stays an error whatever the refusalStyle.
  refusalAnswer: undefined,
};

let upstreams: Upstreams | undefined;
afterEach(async () => {
  await upstreams?.close();
  upstreams = undefined;
  vi.restoreAllMocks();
});

/** The dialect's route on a throwaway app with the real fallback error handler, and alice's key. */
async function messagesApp({ dialect = messagesDialect, limitTokens = 100_000, refusalStyle = 'answer' as const } = {}) {
  // Port 9 (discard) answers nothing: an admitted request fails upstream.
  const config = testConfig({ upstreams: [{ name: 'gone', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k', models: ['gpt-*'] }], proxy: { ...testConfig().proxy, refusalStyle } });
  const store = memoryStore([monthlyUserTokens(limitTokens)]);
  const clock = new ManualClock(T0);
  const prices = createPriceBook();
  upstreams = Upstreams.fromConfig(config);
  const services: ProxyServices = { store, clock, config, upstreams, prices, tokens: createTokenCounter(), rateLimiter: new RateLimiter(config.rateLimits), metrics: new Metrics({ store, clock, prices }) };
  const app = new Hono();
  app.onError(renderError);
  app.post('/v1/messages', meteredRoute(services, dialect));
  const alice = await userWithKey(store, 'alice');
  const post = async (body: unknown, withKey = true) => {
    const response = await app.request('/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(withKey ? { authorization: `Bearer ${alice.secret}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as unknown };
  };
  return { store, post };
}

const ask = (extra: object = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe("a metered route answers in its dialect's shape, under /v1 or not", () => {
  it.each<[string, unknown, boolean, number, string]>([
    ['no key', ask(), false, 401, 'invalid_request_error'],
    ['broken JSON', '{"model":', true, 400, 'invalid_request_error'],
    ['a bad field', ask({ max_tokens: -1 }), true, 400, 'invalid_request_error'],
    ['a model no upstream serves', ask({ model: 'claude-sonnet-4-5' }), true, 404, 'invalid_request_error'],
    ['an upstream that cannot be reached', ask(), true, 502, 'server_error'],
  ])('%s → %i', async (_what, body, withKey, status, type) => {
    const { store, post } = await messagesApp();
    const answer = await post(body, withKey);
    expect(answer.status).toBe(status);
    expect(answer.body).toMatchObject({ type: 'error', error: { type, message: expect.any(String) as string } });
    expect(await store.listHolds()).toEqual([]);
  });

  it('a quota refusal: 429 with its headers, the body in the dialect’s refusal shape (even with refusalStyle "answer")', async () => {
    const { store, post } = await messagesApp({ limitTokens: 10 });
    const answer = await post(ask({ messages: [{ role: 'user', content: 'x'.repeat(400) }] }));
    expect(answer.status).toBe(429);
    expect(answer.headers.get('x-should-retry')).toBe('false');
    expect(answer.headers.get('retry-after')).not.toBeNull();
    expect(answer.body).toEqual({ type: 'error', error: { type: 'quota_exceeded', message: expect.stringContaining('budget user:alice') as string } });
    expect(await store.recentEntries(10)).toEqual([]);
  });

  it('a store that does not answer: 503 with Retry-After, in the dialect’s shape', async () => {
    const { store, post } = await messagesApp();
    vi.spyOn(store, 'findKeyByHash').mockRejectedValue(new StoreUnavailableError('the database is down'));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const answer = await post(ask());
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body).toMatchObject({ type: 'error', error: { type: 'server_error', message: expect.stringContaining('cannot reach its database') as string } });
  });

  it('a bug of ours: 500 without internals, in the dialect’s shape, and the hold given back', async () => {
    const failing: Dialect<ChatRequest, ChatStreamState> = {
      ...messagesDialect,
      upstreamBody: () => {
        throw new TypeError('secret internals');
      },
    };
    const { store, post } = await messagesApp({ dialect: failing });
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const answer = await post(ask());
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({ type: 'error', error: { type: 'server_error', message: 'The proxy failed; the server log has the details.' } });
    expect(logged).toHaveBeenCalled();
    expect(await store.listHolds()).toEqual([]);
  });
});
