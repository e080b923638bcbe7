import { ApiError, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect } from './gemini-harness.js';
import { DEFAULT_MODELS, DEFAULT_PIECE, functionCallTokens, promptTokensOf, startFakeGemini, THOUGHT_PIECE, waitFor, type FakeGemini } from './fake-gemini.js';

let fake: FakeGemini;
let ai: GoogleGenAI;

beforeEach(async () => {
  fake = await startFakeGemini();
  ai = new GoogleGenAI({ apiKey: 'AIza-test', httpOptions: { baseUrl: fake.baseUrl } });
});

afterEach(async () => {
  await fake.close();
});

const model = 'gemini-2.5-flash';
const contents = 'Say hi';
/** The body @google/genai sends for `contents: "Say hi"`. */
const sentContents = [{ role: 'user', parts: [{ text: contents }] }];

describe('generateContent (a whole answer)', () => {
  it('answers with text and usageMetadata, and records the request with its key', async () => {
    const response = await ai.models.generateContent({ model, contents });
    expect(response.text).toBe(DEFAULT_PIECE.repeat(20));
    expect(response.candidates?.[0]?.finishReason).toBe('STOP');
    const prompt = promptTokensOf({ contents: sentContents });
    expect(response.usageMetadata).toMatchObject({ promptTokenCount: prompt, candidatesTokenCount: 20, totalTokenCount: prompt + 20 });
    expect(response.modelVersion).toBe(model);
    const request = fake.requests[0];
    expect(request).toMatchObject({ method: 'POST', path: `/v1beta/models/${model}:generateContent`, model, action: 'generateContent', apiKey: 'AIza-test', servedPieces: 20 });
    expect(request?.headers['x-goog-api-key']).toBe('AIza-test');
    expect(request?.body).toMatchObject({ contents: sentContents });
  });

  it('bills thoughts apart from the candidates (not in candidatesTokenCount), and sends them only when asked', async () => {
    fake.enqueue({ kind: 'reply', thoughtTokens: 3, outputTokens: 2 }, { kind: 'reply', thoughtTokens: 3, outputTokens: 2 });
    const hidden = await ai.models.generateContent({ model, contents });
    expect(hidden.candidates?.[0]?.content?.parts).toEqual([{ text: DEFAULT_PIECE.repeat(2) }]);
    expect(hidden.usageMetadata).toMatchObject({ candidatesTokenCount: 2, thoughtsTokenCount: 3 });
    expect(hidden.usageMetadata?.totalTokenCount).toBe((hidden.usageMetadata?.promptTokenCount ?? 0) + 5);
    const shown = await ai.models.generateContent({ model, contents, config: { thinkingConfig: { includeThoughts: true } } });
    expect(shown.candidates?.[0]?.content?.parts).toEqual([{ text: THOUGHT_PIECE.repeat(3), thought: true }, { text: DEFAULT_PIECE.repeat(2) }]);
  });

  it('reports cached content as part of the prompt', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 1, usage: { promptTokenCount: 1_000, cachedContentTokenCount: 800 } });
    const response = await ai.models.generateContent({ model, contents });
    expect(response.usageMetadata).toMatchObject({ promptTokenCount: 1_000, cachedContentTokenCount: 800, candidatesTokenCount: 1, totalTokenCount: 1_001 });
  });

  it('stops at maxOutputTokens (thoughts count) with MAX_TOKENS, unless told to ignore it', async () => {
    fake.enqueue({ kind: 'reply', thoughtTokens: 3, outputTokens: 10 }, { kind: 'reply', outputTokens: 10, ignoreMaxOutputTokens: true });
    const cut = await ai.models.generateContent({ model, contents, config: { maxOutputTokens: 5 } });
    expect(cut.candidates?.[0]?.finishReason).toBe('MAX_TOKENS');
    expect(cut.text).toBe(DEFAULT_PIECE.repeat(2));
    expect(cut.usageMetadata).toMatchObject({ candidatesTokenCount: 2, thoughtsTokenCount: 3 });
    const whole = await ai.models.generateContent({ model, contents, config: { maxOutputTokens: 5 } });
    expect(whole.candidates?.[0]?.finishReason).toBe('STOP');
    expect(whole.usageMetadata?.candidatesTokenCount).toBe(10);
  });

  it('answers a function call whole, its tokens in the candidates count', async () => {
    const call = { name: 'get_weather', args: { city: 'Paris' } };
    fake.enqueue({ kind: 'reply', functionCall: call });
    const response = await ai.models.generateContent({ model, contents });
    expect(response.functionCalls).toEqual([call]);
    expect(response.usageMetadata?.candidatesTokenCount).toBe(functionCallTokens(call));
  });
});

describe('streamGenerateContent (SSE)', () => {
  it('streams one piece a chunk as `data: …\\r\\n\\r\\n`; only the last chunk counts the output, beside its finishReason', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 3 });
    const chunks = await collect(await ai.models.generateContentStream({ model, contents }));
    expect(chunks.map((c) => c.text)).toEqual([DEFAULT_PIECE, DEFAULT_PIECE, DEFAULT_PIECE]);
    const prompt = promptTokensOf({ contents: sentContents });
    expect(chunks.slice(0, 2).map((c) => c.usageMetadata)).toEqual([0, 1].map(() => ({ promptTokenCount: prompt, totalTokenCount: prompt, promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }] })));
    expect(chunks.slice(0, 2).map((c) => c.candidates?.[0]?.finishReason)).toEqual([undefined, undefined]);
    expect(chunks[2]?.candidates?.[0]?.finishReason).toBe('STOP');
    expect(chunks[2]?.usageMetadata).toMatchObject({ promptTokenCount: prompt, candidatesTokenCount: 3, totalTokenCount: prompt + 3 });
    const request = fake.requests[0];
    expect(request).toMatchObject({ path: `/v1beta/models/${model}:streamGenerateContent`, query: { alt: 'sse' }, action: 'streamGenerateContent', servedPieces: 3 });
  });

  it('streams thoughts first when asked; hidden ones are billed in the last chunk all the same', async () => {
    fake.enqueue({ kind: 'reply', thoughtTokens: 2, outputTokens: 1 }, { kind: 'reply', thoughtTokens: 2, outputTokens: 1 });
    const shown = await collect(await ai.models.generateContentStream({ model, contents, config: { thinkingConfig: { includeThoughts: true } } }));
    expect(shown.map((c) => c.candidates?.[0]?.content?.parts)).toEqual([[{ text: THOUGHT_PIECE, thought: true }], [{ text: THOUGHT_PIECE, thought: true }], [{ text: DEFAULT_PIECE }]]);
    const hidden = await collect(await ai.models.generateContentStream({ model, contents }));
    expect(hidden).toHaveLength(1);
    expect(hidden[0]?.usageMetadata).toMatchObject({ candidatesTokenCount: 1, thoughtsTokenCount: 2 });
  });

  it('with runningUsage, middle chunks count the output so far', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 3, runningUsage: true });
    const chunks = await collect(await ai.models.generateContentStream({ model, contents }));
    expect(chunks.map((c) => c.usageMetadata?.candidatesTokenCount)).toEqual([1, 2, 3]);
  });

  it('ends a stream cut by maxOutputTokens with MAX_TOKENS', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 10 });
    const chunks = await collect(await ai.models.generateContentStream({ model, contents, config: { maxOutputTokens: 4 } }));
    expect(chunks).toHaveLength(4);
    expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe('MAX_TOKENS');
  });

  // The SDK throws an ApiError naming the status when the object arrives in a read of its own, and
  // "Incomplete JSON segment at the end" when it came with the events before it: an error either way.
  it('fails mid-stream with a bare JSON error object after the events, which ends the SDK iterator in an error', async () => {
    fake.enqueue({ kind: 'stream-error', afterPieces: 2, status: 'UNAVAILABLE' });
    const received: GenerateContentResponse[] = [];
    const error = await (async () => {
      for await (const chunk of await ai.models.generateContentStream({ model, contents })) received.push(chunk);
    })().catch((e: unknown) => e);
    expect(received).toHaveLength(2);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/UNAVAILABLE|Incomplete JSON segment at the end/);
    expect(fake.requests[0]?.servedPieces).toBe(2);
  });

  it('a dropped stream ends the SDK iterator in an error', async () => {
    fake.enqueue({ kind: 'drop', afterPieces: 1 });
    const error = await collect(await ai.models.generateContentStream({ model, contents })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
  });

  it('counts a client that leaves as aborted', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 1_000, chunkDelayMs: 2 });
    const controller = new AbortController();
    let n = 0;
    await (async () => {
      for await (const _chunk of await ai.models.generateContentStream({ model, contents, config: { abortSignal: controller.signal } })) {
        if (++n === 3) controller.abort();
      }
    })().catch(() => undefined);
    await waitFor(() => fake.aborted === 1, 2_000, 'the fake to see the abort');
  });
});

describe('errors, keys, countTokens and models', () => {
  it("answers errors in Google's shape, which the SDK surfaces as an ApiError with the status (and does not retry by default)", async () => {
    fake.enqueue({ kind: 'error', status: 'RESOURCE_EXHAUSTED' });
    const error = await ai.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(429);
    expect(JSON.parse((error as ApiError).message)).toEqual({ error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } });
    expect(fake.requests).toHaveLength(1);
  });

  it('checks the key when it has one: none is a 403, another a 400 API_KEY_INVALID; `?key=` works too', async () => {
    fake.apiKey = 'AIza-right';
    const wrong = await ai.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((wrong as ApiError).status).toBe(400);
    expect((wrong as ApiError).message).toContain('API_KEY_INVALID');
    const none = await fetch(`${fake.baseUrl}/v1beta/models`);
    expect(none.status).toBe(403);
    const byQuery = await fetch(`${fake.baseUrl}/v1beta/models?key=AIza-right`);
    expect(byQuery.status).toBe(200);
    expect(fake.requests.at(-1)?.apiKey).toBe('AIza-right');
  });

  it('counts tokens as it counts prompts', async () => {
    const counted = await ai.models.countTokens({ model, contents });
    expect(counted.totalTokens).toBe(promptTokensOf({ contents: sentContents }));
    expect(fake.requests[0]?.path).toBe(`/v1beta/models/${model}:countTokens`);
  });

  it('lists models in pages, named models/…, and gets one', async () => {
    const pager = await ai.models.list({ config: { pageSize: 2 } });
    const names: string[] = [];
    for await (const m of pager) names.push(m.name ?? '');
    expect(names).toEqual(DEFAULT_MODELS.map((m) => m.name));
    expect(fake.requests.map((r) => r.query.pageSize)).toEqual(['2', '2', '2']);
    const one = await ai.models.get({ model: 'gemini-2.5-pro' });
    expect(one.displayName).toBe('Gemini 2.5 Pro');
  });

  it("answers an unknown path with Google's 404", async () => {
    const response = await fetch(`${fake.baseUrl}/v1beta/nothing`, { headers: { 'x-goog-api-key': 'k' } });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { status: string } }).error.status).toBe('NOT_FOUND');
  });
});
