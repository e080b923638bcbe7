import { Ollama, type ChatResponse, type GenerateResponse } from 'ollama';
import { Ollama as BrowserOllama } from 'ollama/browser';
import { afterEach, describe, expect, it } from 'vitest';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { DEFAULT_PIECE, embeddingOf, FAKE_OLLAMA_VERSION, promptEvalCountOf, waitFor } from '../testing/fake-ollama.js';
import { testConfig } from '../testing/harness.js';
import { startOllamaProxy, type OllamaProxyHarness } from '../testing/ollama-proxy-harness.js';
import { DEFAULT_OUTPUT_CAP } from './pricing.js';

let proxy: OllamaProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const model = 'llama3.2';
const messages = [{ role: 'user', content: 'Say hi' }];

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

const ledger = (p: OllamaProxyHarness) => p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
const lastEntry = async (p: OllamaProxyHarness) => (await p.svc.store.recentEntries(1))[0];

/** What the fake reports for the request it was sent (its nth). */
const reported = (p: OllamaProxyHarness, n = 0) => promptEvalCountOf(p.fake.requests[n]?.body);

describe('POST /ollama/api/chat through the ollama package', () => {
  it('answers a whole message unchanged and charges exactly what Ollama reported, at $0 for a local model', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const answer = await proxy.client(proxy.alice.secret).chat({ model, messages });
    expect(answer).toMatchObject({ model, message: { role: 'assistant', content: DEFAULT_PIECE.repeat(20) }, done: true, done_reason: 'stop', eval_count: 20 });
    expect(answer.prompt_eval_count).toBe(reported(proxy));
    // Ollama's own default is no limit: the proxy always sets one (the model's cap here, the budget having room).
    expect(proxy.fake.requests[0]?.body).toEqual({ model, messages, stream: false, options: { num_predict: DEFAULT_OUTPUT_CAP } });

    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ group: 'alice', requests: 1, inputTokens: reported(proxy), outputTokens: 20, costMicros: 0 });
    expect(await lastEntry(proxy)).toMatchObject({ source: 'upstream', outcome: 'ok', model, costMicros: 0 });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('streams NDJSON through unchanged and settles on the last line’s counts', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'reply', thinkingTokens: 2, text: ['Hello', ' world'], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
    const parts: ChatResponse[] = await collect(await proxy.client(proxy.alice.secret).chat({ model, messages, stream: true, think: true, options: { temperature: 0.1 } }));
    expect(parts.map((p) => [p.message.thinking ?? '', p.message.content, p.done])).toEqual([
      [' hmm', '', false],
      [' hmm', '', false],
      ['', 'Hello', false],
      ['', ' world', false],
      ['', '', false],
      ['', '', true],
    ]);
    expect(parts[4]?.message.tool_calls).toEqual([{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
    expect(parts.at(-1)).toMatchObject({ done_reason: 'stop', prompt_eval_count: reported(proxy), eval_count: 5 });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ think: true, options: { temperature: 0.1, num_predict: DEFAULT_OUTPUT_CAP } });

    expect((await ledger(proxy))[0]).toMatchObject({ inputTokens: reported(proxy), outputTokens: 5, costMicros: 0 });
    expect(await lastEntry(proxy)).toMatchObject({ source: 'upstream', outcome: 'ok' });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('streams when the body does not say (Ollama’s default), as application/x-ndjson with the quota headers', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const response = await fetch(`${proxy.url}/ollama/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${proxy.alice.secret}` }, body: JSON.stringify({ model, messages }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    expect(response.headers.get('x-quota-limit')).toBe('100000');
    const lines = (await response.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as ChatResponse);
    expect(lines).toHaveLength(21);
    expect(lines.at(-1)).toMatchObject({ done: true, eval_count: 20 });
    expect((await ledger(proxy))[0]).toMatchObject({ inputTokens: reported(proxy), outputTokens: 20 });
  });

  it('charges an answer without counts (an Ollama-compatible server) on our own count', async () => {
    proxy = await startOllamaProxy();
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 7, usage: { prompt_eval_count: null, eval_count: null } });
    await collect(await proxy.client(proxy.alice.secret).chat({ model, messages, stream: true }));
    const entry = await lastEntry(proxy);
    expect(entry).toMatchObject({ source: 'estimated', outcome: 'ok', outputTokens: 7 });
    expect(entry?.inputTokens).toBeGreaterThan(0);
  });
});

describe('POST /ollama/api/generate', () => {
  it('whole and streamed, each charged what Ollama reported', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = proxy.client(proxy.alice.secret);
    const whole = await client.generate({ model, prompt: 'Why is the sky blue?', system: 'Be brief.' });
    expect(whole).toMatchObject({ response: DEFAULT_PIECE.repeat(20), done: true, eval_count: 20, prompt_eval_count: reported(proxy, 0) });
    expect(whole.context.length).toBeGreaterThan(0);

    proxy.fake.enqueue({ kind: 'reply', thinkingTokens: 1, text: ['Rayleigh', ' scattering'] });
    const parts: GenerateResponse[] = await collect(await client.generate({ model, prompt: 'Why?', stream: true }));
    expect(parts.map((p) => p.response).join('')).toBe('Rayleigh scattering');
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'stop', eval_count: 3 });

    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ requests: 2, inputTokens: reported(proxy, 0) + reported(proxy, 1), outputTokens: 23, costMicros: 0 });
  });
});

describe('embeddings', () => {
  it('POST /ollama/api/embed: vectors unchanged, charged the upstream’s prompt_eval_count, no output', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const result = await proxy.client(proxy.alice.secret).embed({ model: 'nomic-embed-text', input: ['alpha', 'beta'] });
    expect(result.embeddings).toEqual([embeddingOf('alpha'), embeddingOf('beta')]);
    expect(proxy.fake.requests[0]?.body).toEqual({ model: 'nomic-embed-text', input: ['alpha', 'beta'] });
    expect((await ledger(proxy))[0]).toMatchObject({ inputTokens: reported(proxy), outputTokens: 0, costMicros: 0 });
    expect(await lastEntry(proxy)).toMatchObject({ source: 'upstream', outcome: 'ok' });
  });

  it('POST /ollama/api/embeddings (LobeChat’s call): Ollama reports no counts, so our count of the prompt is charged', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const result = await proxy.client(proxy.alice.secret, 'url').embeddings({ model: 'nomic-embed-text', prompt: 'The quick brown fox' });
    expect(result).toEqual({ embedding: embeddingOf('The quick brown fox') });
    // "The quick brown fox": 4 tokens in o200k_base.
    expect(await lastEntry(proxy)).toMatchObject({ source: 'estimated', outcome: 'ok', inputTokens: 4, outputTokens: 0 });
  });

  it('an embed request without input is a 400 in Ollama’s shape, which never reaches the upstream', async () => {
    proxy = await startOllamaProxy();
    const error = await proxy.client(proxy.alice.secret).embed({ model: 'nomic-embed-text' } as never).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ResponseError', status_code: 400 });
    expect((error as Error).message).toMatch(/input/);
    expect(proxy.fake.requests).toEqual([]);
  });
});

describe('the key-scoped base URL /ollama/k/<key>, for clients that send no header (LobeChat)', () => {
  it('serves chat, tags and version to the key in the URL, charged to its user', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = proxy.client(proxy.alice.secret, 'url');
    const parts = await collect(await client.chat({ model, messages, stream: true }));
    expect(parts.at(-1)).toMatchObject({ done: true, eval_count: 20 });
    expect(proxy.fake.requests[0]?.path).toBe('/api/chat');
    expect((await ledger(proxy))[0]).toMatchObject({ group: 'alice', outputTokens: 20 });
    expect((await client.list()).models.map((m) => m.name)).toEqual(['llama3.2:latest', 'qwen3:8b', 'nomic-embed-text:latest']);
    expect(await client.version()).toEqual({ version: FAKE_OLLAMA_VERSION });
  });
});

describe('the server’s root, where New API lays out Ollama’s API', () => {
  it('serves /api/chat and /api/tags there to a bearer key, beside /api/pricing, and nothing without a key', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = new Ollama({ host: proxy.url, headers: { Authorization: `Bearer ${proxy.alice.secret}` } });
    const parts = await collect(await client.chat({ model, messages, stream: true }));
    expect(parts.at(-1)).toMatchObject({ done: true, eval_count: 20 });
    expect((await ledger(proxy))[0]).toMatchObject({ group: 'alice', outputTokens: 20 });
    expect((await client.list()).models.map((m) => m.name)).toContain('llama3.2:latest');
    const pricing = await fetch(`${proxy.url}/api/pricing`);
    expect(pricing.status).toBe(200);
    expect(await pricing.json()).toMatchObject({ success: true });
    const anonymous = await fetch(`${proxy.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model, messages }) });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: expect.stringContaining('/ollama/k/') });
    expect(proxy.fake.requests.filter((r) => r.path === '/api/chat')).toHaveLength(1);
  });
});

describe('as LobeChat’s Ollama provider calls it (packages/model-runtime/src/providers/ollama/index.ts)', () => {
  // `new Ollama({ host: baseURL })` from ollama/browser, with no headers: the base URL is all it
  // is given (OLLAMA_PROXY_URL), so it is the key-scoped one; ollama-js keeps its path.
  it('lists the models, streams a chat and embeds with the older endpoint, each charged to the key in the URL', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const client = new BrowserOllama({ host: `${proxy.url}/ollama/k/${proxy.alice.secret}` });
    expect((await client.list()).models.map((m) => m.name)).toContain('llama3.2:latest');

    const payload = { temperature: 0.6, top_p: undefined, frequency_penalty: undefined, presence_penalty: undefined };
    const stream = await client.chat({
      messages: [{ content: 'Say hi', role: 'user' }],
      model,
      options: { frequency_penalty: payload.frequency_penalty, presence_penalty: payload.presence_penalty, temperature: payload.temperature / 2, top_p: payload.top_p },
      stream: true,
      tools: undefined as never,
    });
    const parts: ChatResponse[] = await collect(stream);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'stop', eval_count: 20 });
    expect(proxy.fake.requests[1]?.body).toMatchObject({ options: { temperature: 0.3, num_predict: DEFAULT_OUTPUT_CAP }, stream: true });

    const { embedding } = await client.embeddings({ model: 'nomic-embed-text', prompt: 'hello' });
    expect(embedding).toEqual(embeddingOf('hello'));
    const [row] = await ledger(proxy);
    expect(row).toMatchObject({ group: 'alice', requests: 2, outputTokens: 20 });
  });

  it('a refusal reaches LobeChat as the ResponseError whose message it shows (OllamaBizError)', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(5)] });
    const client = new BrowserOllama({ host: `${proxy.url}/ollama/k/${proxy.alice.secret}` });
    const error = (await client.chat({ model, messages, stream: true }).catch((e: unknown) => e)) as { name: string; message: string; status_code: number };
    expect(error.name).toBe('ResponseError');
    expect(error.status_code).toBe(429);
    expect(error.message).toMatch(/budget/);
    expect(error.message).toMatch(/5 tokens/);
  });
});

describe('GET /ollama/api/tags', () => {
  it('lists the Ollama upstreams’ models that their patterns serve, as Ollama describes them', async () => {
    proxy = await startOllamaProxy({ models: ['llama*', 'nomic-embed-text:*'] });
    const { models } = await proxy.client(proxy.alice.secret).list();
    expect(models.map((m) => m.name)).toEqual(['llama3.2:latest', 'nomic-embed-text:latest']);
    expect(models[0]).toMatchObject({ model: 'llama3.2:latest', details: { format: 'gguf', quantization_level: 'Q4_K_M' } });
  });

  it('is a 502 in Ollama’s shape when no upstream can list its models', async () => {
    proxy = await startOllamaProxy();
    await proxy.fake.close();
    const error = await proxy.client(proxy.alice.secret).list().catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 502 });
    expect((error as Error).message).toMatch(/No upstream could list its models/);
  });
});

describe('upstream failures', () => {
  it('an Ollama error passes through with its status and body, and costs nothing', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'error', status: 404, message: 'model "llama3.2" not found, try pulling it first' });
    const error = await proxy.client(proxy.alice.secret).chat({ model, messages, stream: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ResponseError', status_code: 404, error: 'model "llama3.2" not found, try pulling it first' });
    expect(await ledger(proxy)).toEqual([]);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('an error line mid-stream reaches ollama-js as Ollama wrote it; what was delivered is charged', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'stream-error', afterPieces: 3, message: 'llama runner process has terminated' });
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const part of await proxy!.client(proxy!.alice.secret).chat({ model, messages, stream: true })) seen.push(part.message.content);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([DEFAULT_PIECE, DEFAULT_PIECE, DEFAULT_PIECE]);
    expect((failure as Error).message).toBe('llama runner process has terminated');
    expect(await lastEntry(proxy)).toMatchObject({ outcome: 'upstream_error', source: 'estimated', outputTokens: 3 });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('a stream the upstream drops is ended with an error line of ours, which ollama-js throws', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    proxy.fake.enqueue({ kind: 'drop', afterPieces: 2 });
    const failure = await collect(await proxy.client(proxy.alice.secret).chat({ model, messages, stream: true })).catch((e: unknown) => e);
    expect((failure as Error).message).toMatch(/The upstream "local-ollama" (broke off the stream|ended the stream before the response was complete)/);
    expect(await lastEntry(proxy)).toMatchObject({ outcome: 'upstream_error', outputTokens: 2 });
  });
});

describe('budgets', () => {
  it('cuts a stream from an upstream that ignores num_predict at the budget, ending it as Ollama would: the iterator completes, its last part done_reason "length"', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(200)] });
    // Still producing when it is cut (a line a millisecond), so the abort reaches it.
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 1_000, ignoreNumPredict: true, chunkDelayMs: 1 });
    const parts: ChatResponse[] = await collect(await proxy.client(proxy.alice.secret).chat({ model, messages, stream: true }));
    const last = parts.at(-1);
    expect(last).toMatchObject({ model, done: true, done_reason: 'length', message: { role: 'assistant', content: '' } });

    const entry = await lastEntry(proxy);
    expect(entry).toMatchObject({ outcome: 'cut_off', source: 'estimated' });
    const charged = (entry?.inputTokens ?? 0) + (entry?.outputTokens ?? 0);
    expect(charged).toBeLessThanOrEqual(200);
    // Every " hi" delivered is one token, and the last line reports what was charged.
    expect(parts.length - 1).toBe(entry?.outputTokens);
    expect(last).toMatchObject({ prompt_eval_count: entry?.inputTokens, eval_count: entry?.outputTokens });
    // The model was asked to stop at the budget's room.
    expect((proxy.fake.requests[0]?.body as { options: { num_predict: number } }).options.num_predict).toBe(200 - (entry?.inputTokens ?? 0));
    await waitFor(() => proxy?.fake.aborted === 1, 5000, 'the upstream to be aborted');
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('refuses a spent budget with a 429 in Ollama’s shape, which ollama-js throws without retrying', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(100)] });
    const client = proxy.client(proxy.alice.secret);
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 1, usage: { prompt_eval_count: 99, eval_count: 1 } });
    await client.chat({ model, messages });
    const error = await client.chat({ model, messages, stream: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ResponseError', status_code: 429 });
    expect((error as Error).message).toMatch(/budget/);
    expect((error as Error).message).toMatch(/100 tokens/);
    expect(client.calls()).toBe(2);
    expect(proxy.fake.requests).toHaveLength(1);
  });

  it('the refusal’s headers tell any client not to retry before the reset', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(10)] });
    const response = await fetch(`${proxy.url}/ollama/api/generate`, { method: 'POST', headers: { authorization: `Bearer ${proxy.alice.secret}` }, body: JSON.stringify({ model, prompt: 'a long enough prompt to pass ten tokens of budget, surely' }) });
    expect(response.status).toBe(429);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-should-retry')).toBe('false');
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await response.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['error']);
    expect(typeof body.error).toBe('string');
  });

  it('a local model costs $0: a dollar budget does not refuse it as unpriced, and a price in the config still applies', async () => {
    const dollars = { scope: 'user' as const, window: { kind: 'month' as const, timeZone: 'UTC' }, limitTokens: null, limitUsd: 1, onLimit: 'reject' as const };
    proxy = await startOllamaProxy({ defaultBudgets: [dollars] });
    await proxy.client(proxy.alice.secret).chat({ model, messages });
    expect(await lastEntry(proxy)).toMatchObject({ outcome: 'ok', costMicros: 0 });
    await proxy.close();

    proxy = await startOllamaProxy({ defaultBudgets: [dollars], config: { prices: { 'llama*': { input: 1, output: 2 } } } });
    proxy.fake.enqueue({ kind: 'reply', usage: { prompt_eval_count: 1_000, eval_count: 500 } });
    await proxy.client(proxy.alice.secret).chat({ model, messages });
    // 1,000 × $1/M + 500 × $2/M = $0.002.
    expect(await lastEntry(proxy)).toMatchObject({ outcome: 'ok', costMicros: 2_000 });
  });

  it('a model no Ollama upstream serves is a 404 in Ollama’s shape', async () => {
    proxy = await startOllamaProxy({ models: ['llama*'] });
    const error = await proxy.client(proxy.alice.secret).chat({ model: 'mistral', messages }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 404 });
    expect((error as Error).message).toMatch(/`mistral` does not exist/);
    expect(proxy.fake.requests).toEqual([]);
  });

  it('with proxy.streamWholeAnswers a whole answer is assembled from a stream, and cut at the budget like one', async () => {
    proxy = await startOllamaProxy({ defaultBudgets: [monthlyUserTokens(200)], config: { proxy: { ...testConfig().proxy, streamWholeAnswers: true } } });
    const client = proxy.client(proxy.alice.secret);
    proxy.fake.enqueue({ kind: 'reply', thinkingTokens: 1, text: ['Hello', ' world'] });
    const answer = await client.chat({ model, messages });
    expect(proxy.fake.requests[0]?.body).toMatchObject({ stream: true });
    expect(answer).toMatchObject({ message: { role: 'assistant', content: 'Hello world', thinking: ' hmm' }, done: true, done_reason: 'stop', eval_count: 3 });

    proxy.fake.enqueue({ kind: 'reply', outputTokens: 1_000, ignoreNumPredict: true });
    const cut = await client.chat({ model, messages });
    expect(cut).toMatchObject({ done: true, done_reason: 'length' });
    const entry = await lastEntry(proxy);
    expect(entry).toMatchObject({ outcome: 'cut_off' });
    expect(cut.eval_count).toBe(entry?.outputTokens);
    const [row] = await ledger(proxy);
    expect((row?.inputTokens ?? 0) + (row?.outputTokens ?? 0)).toBeLessThanOrEqual(200);
  });
});
