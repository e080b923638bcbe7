import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { eventually, testConfig } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const messages = [{ role: 'user' as const, content: 'hi' }];

/** Nothing charged and nothing held: the ledger is empty and no hold is left. */
async function expectNothingCharged(p: ProxyHarness) {
  expect(await p.svc.store.recentEntries(10)).toEqual([]);
  const store = p.svc.store;
  await eventually(async () => (await store.listHolds()).length === 0, 1_000, 'no hold left');
}

describe('upstream failures: passed on in OpenAI’s shape, nothing charged but what was delivered', () => {
  it.each([
    [500, OpenAI.InternalServerError],
    [429, OpenAI.RateLimitError],
    [400, OpenAI.BadRequestError],
  ])('an upstream %i passes through with its body', async (status, ErrorClass) => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    proxy.fake.enqueue({ kind: 'error', status, body: { error: { message: `upstream says ${status}`, type: 'x', param: null, code: 'upstream_code' } } });
    const error = (await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error.status).toBe(status);
    expect(error.message).toContain(`upstream says ${status}`);
    expect(error.code).toBe('upstream_code');
    await expectNothingCharged(proxy);
  });

  it('an upstream error on a stream request passes through too', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    proxy.fake.enqueue({ kind: 'error', status: 500 });
    const error = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    await expectNothingCharged(proxy);
  });

  it('an upstream that does not answer in time is a 504', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly], config: { proxy: { ...testConfig().proxy, firstByteTimeoutMs: 200 } } });
    proxy.fake.enqueue({ kind: 'hang' });
    const error = (await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(504);
    expect(error.code).toBe('upstream_timeout');
    await expectNothingCharged(proxy);
  });

  it('an upstream that cannot be reached is a 502', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly], config: { upstreams: [{ name: 'gone', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k', models: ['*'] }] } });
    const error = (await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(502);
    expect(error.code).toBe('upstream_unreachable');
    expect(error.message).toContain('"gone"');
    await expectNothingCharged(proxy);
  });

  it('a stream the upstream breaks off: the client gets an error event and is charged what it was sent', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    proxy.fake.enqueue({ kind: 'drop', afterPieces: 5 });
    const stream = await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const error = await (async () => {
      for await (const _ of stream) {
        /* read until it fails */
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(String((error as Error).message)).toContain('broke off the stream');
    // The five pieces reached the client (and the provider bills them): prompt plus those five.
    const [entry, ...others] = await proxy.svc.store.recentEntries(10);
    expect(others).toEqual([]);
    expect(entry).toMatchObject({ outputTokens: 5, source: 'estimated', outcome: 'upstream_error' });
    expect(entry?.inputTokens).toBeGreaterThan(0);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });
});

describe('bad input: a clear OpenAI-shaped 4xx, nothing charged, nothing sent upstream', () => {
  const post = (p: ProxyHarness, body: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${p.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${p.alice.secret}`, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body }),
    });

  it.each<[string, string, number, string | null, string]>([
    ['broken JSON', '{"model": "gpt-4o-mini",', 400, null, 'not valid JSON'],
    ['no model', JSON.stringify({ messages }), 400, 'model', 'model'],
    ['model of the wrong type', JSON.stringify({ model: 4, messages }), 400, 'model', 'expected string'],
    ['no messages', JSON.stringify({ model: 'gpt-4o-mini' }), 400, 'messages', 'messages'],
    ['empty messages', JSON.stringify({ model: 'gpt-4o-mini', messages: [] }), 400, 'messages', 'messages'],
    ['a message without a role', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ content: 'x' }] }), 400, 'messages.0.role', 'role'],
    ['negative max_tokens', JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: -5 }), 400, 'max_tokens', 'max_tokens'],
    ['fractional max_completion_tokens', JSON.stringify({ model: 'gpt-4o-mini', messages, max_completion_tokens: 1.5 }), 400, 'max_completion_tokens', 'max_completion_tokens'],
    ['stream as a string', JSON.stringify({ model: 'gpt-4o-mini', messages, stream: 'yes' }), 400, 'stream', 'stream'],
    ['an unknown model', JSON.stringify({ model: 'no-such-model', messages }), 404, 'model', 'does not exist'],
  ])('%s → %i', async (_label, body, status, param, message) => {
    proxy = await startProxy({ defaultBudgets: [monthly], config: { upstreams: [{ name: 'fake-gpt', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k', models: ['gpt-*'] }] } });
    const response = await post(proxy, body);
    expect(response.status).toBe(status);
    const json = (await response.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(json.error.type).toBe('invalid_request_error');
    expect(json.error.param).toBe(param);
    expect(json.error.message).toContain(message);
    await expectNothingCharged(proxy);
  });

  it('a 40 MB body → 413', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const response = await post(proxy, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(40 * 1024 * 1024) }] }));
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
    expect(proxy.fake.requests).toHaveLength(0);
    await expectNothingCharged(proxy);
  });

  it('a chunked body without Content-Length is bounded too → 413', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly], config: { proxy: { ...testConfig().proxy, maxBodyBytes: 64 * 1024 } } });
    const piece = new TextEncoder().encode('x'.repeat(16 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(piece);
        else controller.close();
      },
    });
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${proxy.alice.secret}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it.each([
    ['no key', undefined],
    ['an unknown key', 'Bearer lq-this-key-was-never-issued-000000000'],
    ['the admin token', 'Bearer test-admin-token-0123456789'],
    ['a malformed header', 'Basic abc'],
  ])('%s → 401 invalid_api_key', async (_label, authorization) => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('a revoked key → 401, through the SDK', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const client = proxy.client(proxy.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    await proxy.svc.store.revokeKey(proxy.alice.subject.keyId, proxy.svc.clock.now());
    expect(await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(proxy.fake.requests).toHaveLength(1);
  });

  it('an unknown /v1 path → OpenAI-shaped 404', async () => {
    proxy = await startProxy();
    const response = await fetch(`${proxy.url}/v1/audio/speech`, { method: 'POST', headers: { authorization: `Bearer ${proxy.alice.secret}` } });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { message: 'Invalid URL (POST /v1/audio/speech)', type: 'invalid_request_error', param: null, code: null } });
  });

  it('a model without a price is refused under a dollar budget, naming the model', async () => {
    proxy = await startProxy({ defaultBudgets: [{ ...monthly, limitTokens: null, limitUsd: 5 }] });
    const error = (await proxy.client(proxy.alice.secret).chat.completions.create({ model: 'my-local-llama', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(400);
    expect(error.code).toBe('model_not_priced');
    expect(error.message).toContain('`my-local-llama`');
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('a bad X-Quota-Tags header → 400 naming the header', async () => {
    proxy = await startProxy();
    const response = await post(proxy, JSON.stringify({ model: 'gpt-4o-mini', messages }), { 'x-quota-tags': 'task=a b' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('X-Quota-Tags');
  });
});
