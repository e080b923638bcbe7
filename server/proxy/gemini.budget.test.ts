import { ApiError, type GenerateContentResponse } from '@google/genai';
import { afterEach, describe, expect, it } from 'vitest';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { countingAsTheFakes } from '../testing/counting-as-the-fakes.js';
import { DEFAULT_PIECE, waitFor } from '../testing/fake-gemini.js';
import { collect, type GeminiProxy, googleErrorOf, startGeminiProxy } from '../testing/gemini-harness.js';
import { eventually, testConfig } from '../testing/harness.js';
import { countPromptWith } from './prompt-count.js';

let proxy: GeminiProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const model = 'gemini-2.5-flash';
const contents = 'Tell me a story';

async function charged(p: GeminiProxy) {
  const entries = await p.svc.store.recentEntries(100);
  return { entries, total: entries.reduce((sum, e) => sum + e.inputTokens + e.outputTokens, 0) };
}


describe('Gemini budgets at the proxy', () => {
  it('cuts a stream whose upstream ignores maxOutputTokens at the budget; the SDK iterator ends cleanly on MAX_TOKENS with the usage as charged', async () => {
    proxy = await startGeminiProxy({ defaultBudgets: [monthlyUserTokens(600)], config: { proxy: { ...testConfig().proxy, leaseTokens: 64 } } });
    // The upstream reports the prompt as the proxy counted it: the budget's edge is then exact.
    const prompt = countPromptWith(countingAsTheFakes(), { kind: 'gemini', model, body: { contents: [{ role: 'user', parts: [{ text: contents }] }] } });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5_000, ignoreMaxOutputTokens: true, chunkDelayMs: 1, usage: { promptTokenCount: prompt } });
    const chunks: GenerateContentResponse[] = await collect(await proxy.client(proxy.alice.secret).models.generateContentStream({ model, contents }));
    const last = chunks.at(-1);
    expect(last?.candidates?.[0]?.finishReason).toBe('MAX_TOKENS');
    const delivered = chunks.slice(0, -1);
    expect(delivered.every((c) => c.text === DEFAULT_PIECE)).toBe(true);
    const { entries, total } = await charged(proxy);
    expect(entries).toHaveLength(1);
    const [entry] = entries;
    // The prompt as the upstream reported it in every chunk, the output as delivered.
    expect(entry).toMatchObject({ outcome: 'cut_off', source: 'estimated', inputTokens: prompt });
    // The last chunk reports what was charged, as the SDK's (and LobeChat's) usage.
    expect(last?.usageMetadata).toEqual({ promptTokenCount: entry?.inputTokens, candidatesTokenCount: entry?.outputTokens, totalTokenCount: total });
    expect(total).toBeLessThanOrEqual(600);
    expect(total).toBeGreaterThan(600 - 64);
    await waitFor(() => (proxy as GeminiProxy).fake.aborted === 1, 2_000, 'the upstream request to be aborted');
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it("refuses over the budget with a 429 RESOURCE_EXHAUSTED in Google's shape, which the SDK surfaces and does not retry", async () => {
    proxy = await startGeminiProxy({ defaultBudgets: [monthlyUserTokens(50)] });
    const ai = proxy.client(proxy.alice.secret);
    const error = await ai.models.generateContentStream({ model, contents: 'x'.repeat(400) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(429);
    const { error: body } = googleErrorOf(error);
    expect(body).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED', details: [{ reason: 'INSUFFICIENT_QUOTA', domain: 'lobe-quota' }] });
    expect(body.message).toMatch(/^This request does not fit in your lobe-quota budget user:alice/);
    expect(proxy.received).toEqual([`POST /v1beta/models/${model}:streamGenerateContent?alt=sse`]);
    expect(proxy.fake.requests).toHaveLength(0);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('with refusalStyle "answer", the refusal is the model\'s answer: a stream the SDK reads to its end, charged nothing', async () => {
    proxy = await startGeminiProxy({ defaultBudgets: [monthlyUserTokens(50)], config: { proxy: { ...testConfig().proxy, refusalStyle: 'answer' } } });
    const ai = proxy.client(proxy.alice.secret);
    const chunks = await collect(await ai.models.generateContentStream({ model, contents: 'x'.repeat(400) }));
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.text).toMatch(/^⚠️ lobe-quota: This request does not fit in your lobe-quota budget user:alice/);
    expect(chunks[0]?.candidates?.[0]?.finishReason).toBe('STOP');
    const whole = await ai.models.generateContent({ model, contents: 'x'.repeat(400) });
    expect(whole.text).toBe(chunks[0]?.text);
    expect(proxy.fake.requests).toHaveLength(0);
    const entries = await proxy.svc.store.recentEntries(10);
    expect(entries.map((e) => [e.outcome, e.inputTokens + e.outputTokens, e.costMicros])).toEqual([
      ['refused', 0, 0],
      ['refused', 0, 0],
    ]);
  });

  it('a rate limit refuses the same way (a whole answer here)', async () => {
    proxy = await startGeminiProxy({ config: { rateLimits: { key: { requestsPerMinute: 1 } } } });
    const ai = proxy.client(proxy.alice.secret);
    await ai.models.generateContent({ model, contents });
    const error = await ai.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((error as ApiError).status).toBe(429);
    expect(googleErrorOf(error).error).toMatchObject({ status: 'RESOURCE_EXHAUSTED', details: [{ reason: 'RATE_LIMIT_EXCEEDED' }] });
    expect(proxy.received).toHaveLength(2);
    expect(proxy.fake.requests).toHaveLength(1);
  });

  it("the upstream's own 429 reaches the client as Google sent it, not retried, and charges nothing", async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'error', status: 'RESOURCE_EXHAUSTED', headers: { 'retry-after': '7' } });
    const error = await proxy.client(proxy.alice.secret).models.generateContentStream({ model, contents }).catch((e: unknown) => e);
    expect((error as ApiError).status).toBe(429);
    expect(googleErrorOf(error)).toEqual({ error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } });
    expect(proxy.fake.requests).toHaveLength(1);
    expect(await proxy.svc.store.recentEntries(10)).toEqual([]);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('a client that leaves mid-stream is charged what it was sent, and the upstream is aborted', async () => {
    proxy = await startGeminiProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    // A prompt far larger than the proxy's count of its text (cached content, a video, …): the
    // upstream's count, in every chunk, is what the prompt is charged.
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 2_000, chunkDelayMs: 2, usage: { promptTokenCount: 50_000, cachedContentTokenCount: 40_000 } });
    const controller = new AbortController();
    let received = 0;
    await (async () => {
      for await (const chunk of await (proxy as GeminiProxy).client((proxy as GeminiProxy).alice.secret).models.generateContentStream({ model, contents, config: { abortSignal: controller.signal } })) {
        if (chunk.text) received++;
        if (received === 10) controller.abort();
      }
    })().catch(() => undefined);
    await waitFor(() => (proxy as GeminiProxy).fake.aborted === 1, 2_000, 'the upstream request to be aborted');
    const store = proxy.svc.store;
    await eventually(async () => (await store.listHolds()).length === 0, 2_000, 'the hold to be released');
    const { entries } = await charged(proxy);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outcome: 'client_abort', inputTokens: 50_000 });
    expect(entries[0]?.outputTokens).toBeGreaterThanOrEqual(10);
    expect(entries[0]?.outputTokens).toBeLessThan(2_000);
  });

  it('a stream that may think unseen holds its whole allowance up front; one that shows its thoughts, a lease', async () => {
    proxy = await startGeminiProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    const ai = proxy.client(proxy.alice.secret);
    const holdWhile = async (config: object): Promise<number | undefined> => {
      const p = proxy as GeminiProxy;
      p.fake.enqueue({ kind: 'reply', outputTokens: 3, firstByteDelayMs: 300 });
      // The upstream waits before its first byte: the hold is looked at while the request is upstream.
      const answer = ai.models.generateContentStream({ model, contents, config: { maxOutputTokens: 5_000, ...config } }).then(collect);
      await eventually(async () => (await p.svc.store.listHolds()).length === 1, 2_000, 'the hold');
      const [hold] = await p.svc.store.listHolds();
      await answer;
      return hold?.outputTokens;
    };
    // Gemini 2.5 thinks by default and sends its thoughts only when asked: they are billed, never counted live.
    expect(await holdWhile({})).toBe(5_000);
    expect(await holdWhile({ thinkingConfig: { includeThoughts: true } })).toBe(testConfig().proxy.leaseTokens);
    expect(await holdWhile({ thinkingConfig: { thinkingBudget: 0 } })).toBe(testConfig().proxy.leaseTokens);
  });
});
