import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { PRECHECK_BODY_BYTES } from './admit-request.js';
import { MAX_JSON_DEPTH } from '../http/json-depth.js';
import { MAX_MODEL_ID_LENGTH } from './request-body.js';
import { createTokenCounter, type TokenCounter } from './token-count.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const post = (p: ProxyHarness, path: string, body: string, headers: Record<string, string> = { authorization: `Bearer ${p.alice.secret}` }) =>
  fetch(`${p.url}/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

/** `levels` arrays inside each other: `[[[…]]]`. */
const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

describe('bounded at the edge: 400 before admission, nothing held, nothing sent upstream', () => {
  it.each([
    ['/chat/completions', (deep: string) => `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","extra":${deep}}]}`],
    ['/responses', (deep: string) => `{"model":"gpt-4o-mini","input":[{"role":"user","content":"hi","extra":${deep}}]}`],
    ['/embeddings', (deep: string) => `{"model":"text-embedding-3-small","input":"hi","extra":${deep}}`],
  ])('%s: a body nested 10,000 deep is a 400 that says so (it used to hold budget forever)', async (path, bodyWith) => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const response = await post(proxy, path, bodyWith(nested(10_000)));
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('body_too_deep');
    expect(error.message).toContain(`${MAX_JSON_DEPTH} levels`);
    expect(proxy.fake.requests).toHaveLength(0);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
    // The budget is whole: the next request is admitted with all of it.
    expect(((await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { remaining: number }).remaining).toBe(1_000_000);
  });

  it('nesting up to the bound passes (a deep tool schema is a real request)', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    // The body, its messages array and the message take three of the levels.
    const response = await post(proxy, '/chat/completions', `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","extra":${nested(MAX_JSON_DEPTH - 3)}}]}`);
    expect(response.status).toBe(200);
  });

  it.each([
    ['/chat/completions', (model: string) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] })],
    ['/responses', (model: string) => JSON.stringify({ model, input: 'hi' })],
    ['/embeddings', (model: string) => JSON.stringify({ model, input: 'hi' })],
  ])('%s: a model id over the length bound is a 400 naming `model`', async (path, bodyWith) => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const response = await post(proxy, path, bodyWith('m'.repeat(MAX_MODEL_ID_LENGTH + 1)));
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { param: string; message: string } };
    expect(error.param).toBe('model');
    expect(error.message).toContain(`at most ${MAX_MODEL_ID_LENGTH} characters`);
    expect(proxy.fake.requests).toHaveLength(0);
  });
});

describe('who asks comes first', () => {
  it.each([
    ['no key', {}],
    ['an unknown key', { authorization: 'Bearer lq-never-issued-0000000000000000000' }],
  ])('%s and a broken body: 401, not a 400 that describes the body', async (_label, headers) => {
    proxy = await startProxy();
    for (const path of ['/chat/completions', '/responses', '/embeddings']) {
      const response = await post(proxy, path, '{"model": 4, "messages": "nope"', headers);
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    }
  });
});

/** A token counter that counts its own prompt counts, to see which requests were counted at all. */
function watchedCounter(): TokenCounter & { promptCounts: number } {
  const inner = createTokenCounter();
  const watched = {
    ...inner,
    promptCounts: 0,
    countChatPrompt: (model: string, body: unknown) => {
      watched.promptCounts++;
      return inner.countChatPrompt(model, body);
    },
  };
  return watched;
}

describe('a spent budget refuses a large prompt before counting it', () => {
  it('large prompts from a user whose budget is spent are refused without being counted; small ones are counted', async () => {
    const tokens = watchedCounter();
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100)], tokens });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 10, usage: { prompt_tokens: 90, completion_tokens: 10 } });
    const client = proxy.client(proxy.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'spend it all' }] });
    expect(tokens.promptCounts).toBe(1);

    const large = 'A'.repeat(PRECHECK_BODY_BYTES);
    for (let i = 0; i < 5; i++) {
      const error = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: large }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(error.status).toBe(429);
      expect(error.message).toContain('You exceeded your lobe-quota budget user:alice: 100 tokens of 100 tokens used');
    }
    expect(tokens.promptCounts).toBe(1);

    // A small prompt is counted first: a store read would cost more than counting it.
    const small = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(small.status).toBe(429);
    expect(tokens.promptCounts).toBe(2);
    expect(proxy.fake.requests).toHaveLength(1);
  });
});
