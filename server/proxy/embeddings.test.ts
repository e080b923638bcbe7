import OpenAI, { type APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { embeddingOf, promptTokensOf } from '../testing/fake-openai.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const model = 'text-embedding-3-small';

async function ledger(p: ProxyHarness) {
  return p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
}

const close = (actual: number[] | undefined, expected: number[]) => {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((x, i) => expect(actual?.[i]).toBeCloseTo(x, 6));
};

describe('POST /v1/embeddings through the official openai SDK', () => {
  it('embeds a string (base64 on the wire, as the SDK asks) and charges the upstream prompt_tokens, no output', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = proxy.client(proxy.alice.secret);
    const result = await client.embeddings.create({ model, input: 'The quick brown fox' });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ model, input: 'The quick brown fox', encoding_format: 'base64' });
    expect(result.data).toHaveLength(1);
    close(result.data[0]?.embedding, embeddingOf('The quick brown fox'));
    const prompt = promptTokensOf(proxy.fake.requests[0]?.body);
    expect(result.usage).toEqual({ prompt_tokens: prompt, total_tokens: prompt });

    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ group: 'alice', requests: 1, inputTokens: prompt, outputTokens: 0, totalTokens: prompt });
    // text-embedding-3-small: $0.02 / 1M input tokens, rounded up to a micro-dollar.
    expect(row?.costMicros).toBe(Math.ceil(prompt * 0.02));
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ source: 'upstream', outcome: 'ok', model });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('embeds an array of strings and passes float vectors through untouched', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = proxy.client(proxy.alice.secret);
    const inputs = ['alpha', 'beta', 'gamma'];
    proxy.fake.enqueue({ kind: 'reply', usage: { prompt_tokens: 7 } });
    const result = await client.embeddings.create({ model, input: inputs, encoding_format: 'float' });
    expect(result.data.map((d) => d.index)).toEqual([0, 1, 2]);
    inputs.forEach((text, i) => expect(result.data[i]?.embedding).toEqual(embeddingOf(text)));
    expect((await ledger(proxy))[0]).toMatchObject({ inputTokens: 7, outputTokens: 0 });
  });

  it('accepts token ids (number[] and number[][])', async () => {
    proxy = await startProxy();
    const client = proxy.client(proxy.alice.secret);
    await client.embeddings.create({ model, input: [1, 2, 3] });
    await client.embeddings.create({ model, input: [[1, 2], [3]] });
    expect(proxy.fake.requests.map((r) => (r.body as { input: unknown }).input)).toEqual([[1, 2, 3], [[1, 2], [3]]]);
  });

  it('refuses with 429 insufficient_quota when the budget is used up', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100)] });
    const client = proxy.client(proxy.alice.secret, { maxRetries: 2 });
    proxy.fake.enqueue({ kind: 'reply', usage: { prompt_tokens: 100 } });
    await client.embeddings.create({ model, input: 'fill it up' });
    const error = await client.embeddings.create({ model, input: 'one more' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as APIError).code).toBe('insufficient_quota');
    expect(proxy.fake.requests).toHaveLength(1);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('passes an upstream error through and charges nothing', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'error', status: 503 });
    const error = await proxy.client(proxy.alice.secret).embeddings.create({ model, input: 'x' }).catch((e: unknown) => e);
    expect((error as APIError).status).toBe(503);
    expect(await ledger(proxy)).toEqual([]);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('answers a request without input with an OpenAI-shaped 400 naming input', async () => {
    proxy = await startProxy();
    const response = await fetch(`${proxy.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${proxy.alice.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: 'input' });
    expect(body.error.message).toContain('input');
    expect(proxy.fake.requests).toHaveLength(0);

    const wrongType = await proxy
      .client(proxy.alice.secret)
      .embeddings.create({ model, input: { text: 'x' } as unknown as string })
      .catch((e: unknown) => e);
    expect(wrongType).toBeInstanceOf(OpenAI.BadRequestError);
    expect((wrongType as APIError).param).toBe('input');
  });
});
