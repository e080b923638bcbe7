import type { GenerateContentResponse } from '@google/genai';
import { afterEach, describe, expect, it } from 'vitest';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { DEFAULT_PIECE, functionCallTokens, promptTokensOf, THOUGHT_PIECE } from '../testing/fake-gemini.js';
import { collect, type GeminiProxy, startGeminiProxy, UPSTREAM_GEMINI_KEY } from '../testing/gemini-harness.js';
import { testConfig } from '../testing/harness.js';

let proxy: GeminiProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const model = 'gemini-2.5-flash';
const contents = 'Say hi';
const sentContents = [{ role: 'user', parts: [{ text: contents }] }];

async function lastEntry(p: GeminiProxy) {
  const [entry] = await p.svc.store.recentEntries(1);
  if (!entry) throw new Error('nothing was charged');
  return entry;
}

/**
 * What the test price (0.3 / 0.075 cached / 2.5 dollars per 1M tokens) makes of a usage, in
 * micro-dollars rounded up: the uncached prompt, the cached prompt and the output each at its price.
 */
const costMicros = ({ input, cached, output }: { input: number; cached: number; output: number }) =>
  Math.ceil(((input - cached) * 300_000 + cached * 75_000 + output * 2_500_000) / 1_000_000);

describe('Gemini through lobe-quota, with @google/genai as the client (base URL: lobe-quota, key: lq-…)', () => {
  it('a whole answer is charged exactly what the upstream reported: the prompt with its cached part, the output with the thoughts', async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'reply', thoughtTokens: 5, outputTokens: 3, usage: { promptTokenCount: 1_200, cachedContentTokenCount: 1_000 } });
    const response = await proxy.client(proxy.alice.secret).models.generateContent({ model, contents });
    expect(response.text).toBe(DEFAULT_PIECE.repeat(3));
    // The answer reaches the client as the upstream wrote it.
    expect(response.usageMetadata).toMatchObject({ promptTokenCount: 1_200, cachedContentTokenCount: 1_000, candidatesTokenCount: 3, thoughtsTokenCount: 5, totalTokenCount: 1_208 });
    expect(await lastEntry(proxy)).toMatchObject({
      userId: 'alice',
      model,
      inputTokens: 1_200,
      cachedTokens: 1_000,
      outputTokens: 8,
      reasoningTokens: 5,
      costMicros: costMicros({ input: 1_200, cached: 1_000, output: 8 }),
      source: 'upstream',
      outcome: 'ok',
    });
    expect(costMicros({ input: 1_200, cached: 1_000, output: 8 })).toBe(155);
    expect(proxy.fake.requests[0]).toMatchObject({ path: `/v1beta/models/${model}:generateContent`, body: { contents: sentContents } });
  });

  it('a stream is charged exactly what its last chunk reported, thoughts included, and reaches the SDK chunk by chunk', async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'reply', thoughtTokens: 4, outputTokens: 6, usage: { promptTokenCount: 2_000, cachedContentTokenCount: 1_500 } });
    const chunks = await collect(await proxy.client(proxy.alice.secret).models.generateContentStream({ model, contents, config: { thinkingConfig: { includeThoughts: true } } }));
    const parts = chunks.flatMap((c) => c.candidates?.[0]?.content?.parts ?? []);
    expect(parts.filter((p) => p.thought).map((p) => p.text).join('')).toBe(THOUGHT_PIECE.repeat(4));
    expect(parts.filter((p) => !p.thought).map((p) => p.text).join('')).toBe(DEFAULT_PIECE.repeat(6));
    expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe('STOP');
    expect(chunks.at(-1)?.usageMetadata).toMatchObject({ candidatesTokenCount: 6, thoughtsTokenCount: 4 });
    expect(await lastEntry(proxy)).toMatchObject({ inputTokens: 2_000, cachedTokens: 1_500, outputTokens: 10, reasoningTokens: 4, costMicros: costMicros({ input: 2_000, cached: 1_500, output: 10 }), source: 'upstream', outcome: 'ok' });
    expect(proxy.fake.requests[0]).toMatchObject({ path: `/v1beta/models/${model}:streamGenerateContent`, query: { alt: 'sse' } });
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it('thoughts the client did not ask to see are charged all the same (the upstream bills them)', async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'reply', thoughtTokens: 7, outputTokens: 2 });
    const chunks = await collect(await proxy.client(proxy.alice.secret).models.generateContentStream({ model, contents }));
    expect(chunks.map((c) => c.text).join('')).toBe(DEFAULT_PIECE.repeat(2));
    const prompt = promptTokensOf({ contents: sentContents });
    expect(await lastEntry(proxy)).toMatchObject({ inputTokens: prompt, outputTokens: 9, reasoningTokens: 7, source: 'upstream' });
  });

  it('a function call streams whole and is charged as the upstream counted it', async () => {
    proxy = await startGeminiProxy();
    const call = { name: 'get_weather', args: { city: 'Paris' } };
    proxy.fake.enqueue({ kind: 'reply', functionCall: call });
    const chunks = await collect(await proxy.client(proxy.alice.secret).models.generateContentStream({ model, contents }));
    expect(chunks.flatMap((c) => c.functionCalls ?? [])).toEqual([call]);
    expect((await lastEntry(proxy)).outputTokens).toBe(functionCallTokens(call));
  });

  it('LobeChat\'s own request (its Google provider streams every chat, with its safety settings, system instruction and thinking config) is metered', async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'reply', thoughtTokens: 2, outputTokens: 3 });
    const controller = new AbortController();
    const threshold = 'BLOCK_NONE' as never;
    const stream = await proxy.client(proxy.alice.secret).models.generateContentStream({
      model,
      contents: [{ role: 'user', parts: [{ text: 'Hello' }] }],
      config: {
        abortSignal: controller.signal,
        maxOutputTokens: undefined,
        safetySettings: ['HARM_CATEGORY_HATE_SPEECH', 'HARM_CATEGORY_SEXUALLY_EXPLICIT', 'HARM_CATEGORY_HARASSMENT', 'HARM_CATEGORY_DANGEROUS_CONTENT'].map((category) => ({ category: category as never, threshold })),
        systemInstruction: 'You are a helpful assistant.',
        temperature: 1,
        thinkingConfig: { includeThoughts: true, thinkingBudget: -1 },
        tools: undefined,
        topP: undefined,
      },
    });
    const chunks: GenerateContentResponse[] = await collect(stream);
    expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe('STOP');
    expect(await lastEntry(proxy)).toMatchObject({ userId: 'alice', outputTokens: 5, reasoningTokens: 2, source: 'upstream' });
    // Sent on as LobeChat wrote it.
    expect(proxy.fake.requests[0]?.body).toMatchObject({ systemInstruction: { parts: [{ text: 'You are a helpful assistant.' }] }, generationConfig: { thinkingConfig: { includeThoughts: true, thinkingBudget: -1 } } });
  });

  it('clamps maxOutputTokens to the budget\'s room, and sets it when the client left it to the model', async () => {
    proxy = await startGeminiProxy({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const ai = proxy.client(proxy.alice.secret);
    await ai.models.generateContent({ model, contents, config: { maxOutputTokens: 50_000, temperature: 0.5 } });
    await ai.models.generateContent({ model, contents });
    await ai.models.generateContent({ model, contents, config: { maxOutputTokens: 100 } });
    const limits = proxy.fake.requests.map((r) => (r.body as { generationConfig?: { maxOutputTokens?: number; temperature?: number } }).generationConfig);
    expect(limits[0]?.maxOutputTokens).toBeLessThan(1_000);
    expect(limits[0]?.temperature).toBe(0.5);
    expect(limits[1]?.maxOutputTokens).toBeLessThan(1_000);
    expect(limits[2]?.maxOutputTokens).toBe(100);
  });

  it('a whole answer served from a stream (proxy.streamWholeAnswers) is the answer generateContent gives', async () => {
    proxy = await startGeminiProxy({ config: { proxy: { ...testConfig().proxy, streamWholeAnswers: true } } });
    proxy.fake.enqueue({ kind: 'reply', thoughtTokens: 2, outputTokens: 3, usage: { promptTokenCount: 40 } });
    const response = await proxy.client(proxy.alice.secret).models.generateContent({ model, contents, config: { thinkingConfig: { includeThoughts: true } } });
    expect(response.candidates?.[0]?.content?.parts).toEqual([{ text: THOUGHT_PIECE.repeat(2), thought: true }, { text: DEFAULT_PIECE.repeat(3) }]);
    expect(response.candidates?.[0]?.finishReason).toBe('STOP');
    expect(response.usageMetadata).toMatchObject({ promptTokenCount: 40, candidatesTokenCount: 3, thoughtsTokenCount: 2 });
    expect(proxy.fake.requests[0]).toMatchObject({ path: `/v1beta/models/${model}:streamGenerateContent`, query: { alt: 'sse' } });
    expect(await lastEntry(proxy)).toMatchObject({ inputTokens: 40, outputTokens: 5, source: 'upstream' });
  });
});

describe('countTokens and the model list', () => {
  it('countTokens is passed through with the upstream key, and charges nothing', async () => {
    proxy = await startGeminiProxy();
    const counted = await proxy.client(proxy.alice.secret).models.countTokens({ model, contents });
    expect(counted.totalTokens).toBe(promptTokensOf({ contents: sentContents }));
    expect(proxy.fake.requests[0]).toMatchObject({ path: `/v1beta/models/${model}:countTokens`, apiKey: UPSTREAM_GEMINI_KEY, body: { contents: sentContents } });
    expect(await proxy.svc.store.recentEntries(10)).toEqual([]);
  });

  it('GET /v1beta/models?key=lq-… (LobeChat\'s model list) lists the models the Gemini upstreams serve, named models/…', async () => {
    proxy = await startGeminiProxy({ models: ['gemini-2.5-*'] });
    const response = await fetch(`${proxy.url}/v1beta/models?key=${proxy.alice.secret}`);
    expect(response.status).toBe(200);
    const { models } = (await response.json()) as { models: Array<{ name: string; outputTokenLimit: number }> };
    expect(models.map((m) => m.name)).toEqual(['models/gemini-2.5-flash', 'models/gemini-2.5-pro', 'models/gemini-2.5-flash-lite']);
    expect(models[0]?.outputTokenLimit).toBe(65_536);
    expect(proxy.fake.requests[0]).toMatchObject({ path: '/v1beta/models', apiKey: UPSTREAM_GEMINI_KEY });
  });

  it('the SDK pages through the list, and gets one model', async () => {
    proxy = await startGeminiProxy();
    const ai = proxy.client(proxy.alice.secret);
    const names: string[] = [];
    for await (const m of await ai.models.list({ config: { pageSize: 2 } })) names.push(m.name ?? '');
    expect(names).toEqual(['models/gemini-2.5-flash', 'models/gemini-2.5-pro', 'models/gemini-2.5-flash-lite', 'models/gemini-2.0-flash', 'models/gemini-embedding-001']);
    expect((await ai.models.get({ model: 'gemini-2.5-pro' })).displayName).toBe('Gemini 2.5 Pro');
    // The upstream's list is fetched once and kept for a minute.
    expect(proxy.fake.requests.filter((r) => r.path === '/v1beta/models')).toHaveLength(1);
  });
});
