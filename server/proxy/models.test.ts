import OpenAI, { type APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS, startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { MODEL_LIST_TTL_MS } from './models.js';

let proxy: ProxyHarness | undefined;
let extra: FakeOpenAI[] = [];
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await Promise.all(extra.map((f) => f.close()));
  extra = [];
});

const modelRequests = (fake: FakeOpenAI) => fake.requests.filter((r) => r.method === 'GET' && r.path === '/v1/models').length;

async function listIds(client: OpenAI): Promise<string[]> {
  const ids: string[] = [];
  for await (const model of client.models.list()) ids.push(model.id);
  return ids;
}

describe('GET /v1/models through the official openai SDK', () => {
  it('lists the upstream’s models, sorted by id, as the upstream described them', async () => {
    proxy = await startProxy();
    const client = proxy.client(proxy.alice.secret);
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([...DEFAULT_MODELS].sort());
    expect(page.data.find((m) => m.id === 'text-embedding-3-small')).toEqual({ id: 'text-embedding-3-small', object: 'model', created: 1_700_000_000, owned_by: 'openai-internal' });
    expect(proxy.fake.requests[0]?.apiKey).toBe('sk-upstream-secret');
  });

  it('merges several upstreams, each cut to the models it serves; the first upstream wins a duplicate', async () => {
    const second = await startFakeOpenAI({ models: ['claude-sonnet-4', 'claude-haiku-4', 'gpt-4o', 'llama-3'] });
    extra.push(second);
    const first = await startFakeOpenAI({ models: ['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'claude-sonnet-4'] });
    extra.push(first);
    proxy = await startProxy({
      config: {
        upstreams: [
          { name: 'openai', baseUrl: first.baseUrl, apiKey: 'sk-a', models: ['gpt-*', 'o3-*'] },
          { name: 'other', baseUrl: second.baseUrl, apiKey: 'sk-b', models: ['claude-*', 'gpt-4o'] },
        ],
      },
    });
    const ids = await listIds(proxy.client(proxy.alice.secret));
    // openai's claude-sonnet-4 is not served by it; other's llama-3 is not served by it; gpt-4o is listed once.
    expect(ids).toEqual(['claude-haiku-4', 'claude-sonnet-4', 'gpt-4o', 'gpt-4o-mini', 'o3-mini']);
    expect(modelRequests(first)).toBe(1);
    expect(modelRequests(second)).toBe(1);
    expect(first.requests[0]?.apiKey).toBe('sk-a');
    expect(second.requests[0]?.apiKey).toBe('sk-b');
  });

  it('caches each upstream’s list for a minute', async () => {
    proxy = await startProxy();
    const client = proxy.client(proxy.alice.secret);
    const before = await listIds(client);
    expect(await listIds(client)).toEqual(before);
    expect(modelRequests(proxy.fake)).toBe(1);
    // Concurrent refreshes share the cached list too.
    await Promise.all([listIds(client), listIds(client), listIds(client)]);
    expect(modelRequests(proxy.fake)).toBe(1);
    proxy.svc.clock.advance(MODEL_LIST_TTL_MS);
    expect(await listIds(client)).toEqual(before);
    expect(modelRequests(proxy.fake)).toBe(2);
  });

  it('skips an upstream that cannot answer, and does not cache its failure', async () => {
    const down = await startFakeOpenAI({ models: ['claude-sonnet-4'] });
    const downUrl = down.baseUrl;
    await down.close();
    const flaky = await startFakeOpenAI({ models: ['mistral-large'] });
    extra.push(flaky);
    flaky.enqueue({ kind: 'error', status: 500 });
    proxy = await startProxy({
      config: {
        upstreams: [
          { name: 'down', baseUrl: downUrl, apiKey: undefined, models: ['claude-*'] },
          { name: 'flaky', baseUrl: flaky.baseUrl, apiKey: undefined, models: ['mistral-*'] },
        ],
      },
    });
    // Both fail the first time: 502. Then "flaky" answers, and "down" is simply left out.
    const client = proxy.client(proxy.alice.secret);
    const error = await client.models.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as APIError).status).toBe(502);
    expect((error as APIError).code).toBe('upstream_unreachable');
    expect((error as APIError).message).toContain('"flaky" answered 500');
    expect((error as APIError).message).toContain('"down" could not be reached');
    expect(await listIds(client)).toEqual(['mistral-large']);
    expect(modelRequests(flaky)).toBe(2);
  });

  it('refuses a missing or wrong key with 401', async () => {
    proxy = await startProxy();
    const wrong = await proxy.client('lq-not-a-key').models.list().catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((wrong as APIError).code).toBe('invalid_api_key');
    const upstreamKey = await proxy.client('sk-upstream-secret').models.list().catch((e: unknown) => e);
    expect((upstreamKey as APIError).status).toBe(401);
    const none = await fetch(`${proxy.url}/v1/models`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    expect(proxy.fake.requests).toHaveLength(0);
  });
});
