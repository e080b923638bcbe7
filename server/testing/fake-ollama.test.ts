import { Ollama, type ChatResponse, type GenerateResponse } from 'ollama';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS, DEFAULT_PIECE, embeddingOf, FAKE_OLLAMA_VERSION, promptEvalCountOf, startFakeOllama, THINKING_PIECE, waitFor, type FakeOllama } from './fake-ollama.js';

let fake: FakeOllama;
let client: Ollama;

beforeEach(async () => {
  fake = await startFakeOllama();
  client = new Ollama({ host: fake.baseUrl });
});

afterEach(async () => {
  await fake.close();
});

const model = 'llama3.2';
const messages = [{ role: 'user', content: 'Say hi' }];

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

describe('POST /api/chat', () => {
  it('answers a whole message with its counts at the top level, and records the request', async () => {
    const answer = await client.chat({ model, messages });
    expect(answer).toMatchObject({ model, message: { role: 'assistant', content: DEFAULT_PIECE.repeat(20) }, done: true, done_reason: 'stop', prompt_eval_count: promptEvalCountOf({ messages }), eval_count: 20 });
    expect(answer.total_duration).toBeGreaterThan(0);
    expect(new Date(answer.created_at).toISOString()).toBe(answer.created_at);
    const request = fake.requests[0];
    expect(request).toMatchObject({ method: 'POST', path: '/api/chat', body: { model, messages, stream: false }, authorization: null, servedPieces: 20 });
  });

  it('streams NDJSON: text lines, then one last line with done_reason and the counts', async () => {
    fake.enqueue({ kind: 'reply', text: ['Hello', ' world'] });
    const parts = await collect(await client.chat({ model, messages, stream: true }));
    expect(parts.map((p) => p.message.content)).toEqual(['Hello', ' world', '']);
    expect(parts.slice(0, 2).map((p) => [p.done, p.eval_count, p.prompt_eval_count])).toEqual([[false, undefined, undefined], [false, undefined, undefined]]);
    expect(parts[2]).toMatchObject({ done: true, done_reason: 'stop', prompt_eval_count: promptEvalCountOf({ messages }), eval_count: 2 });
  });

  it('streams by default: a body without "stream" gets NDJSON', async () => {
    const response = await fetch(`${fake.baseUrl}/api/chat`, { method: 'POST', body: JSON.stringify({ model, messages }) });
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await response.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as ChatResponse);
    expect(lines).toHaveLength(21);
    expect(lines.at(-1)).toMatchObject({ done: true, eval_count: 20 });
  });

  it('streams thinking and tool calls (one whole call a line) and counts them as output', async () => {
    fake.enqueue({ kind: 'reply', thinkingTokens: 2, text: ['ok'], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
    const parts = await collect(await client.chat({ model, messages, stream: true }));
    expect(parts.map((p) => p.message.thinking ?? null)).toEqual([THINKING_PIECE, THINKING_PIECE, null, null, null]);
    expect(parts[3]?.message.tool_calls).toEqual([{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
    expect(parts.at(-1)?.eval_count).toBe(4);
  });

  it('stops at options.num_predict with done_reason "length" unless told to ignore it', async () => {
    fake.enqueue({ kind: 'reply', thinkingTokens: 1, outputTokens: 10 }, { kind: 'reply', outputTokens: 10, ignoreNumPredict: true });
    const cut = await client.chat({ model, messages, options: { num_predict: 4 } });
    expect(cut).toMatchObject({ message: { content: DEFAULT_PIECE.repeat(3), thinking: THINKING_PIECE }, done_reason: 'length', eval_count: 4 });
    const parts = await collect(await client.chat({ model, messages, stream: true, options: { num_predict: 4 } }));
    expect(parts.at(-1)).toMatchObject({ done_reason: 'stop', eval_count: 10 });
  });

  it('reports what it is told to, and leaves out a count set to null', async () => {
    fake.enqueue({ kind: 'reply', usage: { prompt_eval_count: 123, eval_count: null } });
    const answer = await client.chat({ model, messages });
    expect(answer.prompt_eval_count).toBe(123);
    expect('eval_count' in answer).toBe(false);
  });
});

describe('POST /api/generate', () => {
  it('answers with response, context and counts, streamed or whole', async () => {
    const whole = await client.generate({ model, prompt: 'Why is the sky blue?', system: 'Be brief.' });
    expect(whole).toMatchObject({ response: DEFAULT_PIECE.repeat(20), done: true, done_reason: 'stop', prompt_eval_count: promptEvalCountOf({ prompt: 'Why is the sky blue?', system: 'Be brief.' }), eval_count: 20 });
    expect(whole.context.length).toBeGreaterThan(0);
    fake.enqueue({ kind: 'reply', thinkingTokens: 1, text: ['Rayleigh'] });
    const parts: GenerateResponse[] = await collect(await client.generate({ model, prompt: 'Why?', stream: true }));
    expect(parts.map((p) => [p.response, p.thinking ?? null, p.done])).toEqual([['', THINKING_PIECE, false], ['Rayleigh', null, false], ['', null, true]]);
    expect(parts.at(-1)).toMatchObject({ done_reason: 'stop', eval_count: 2 });
  });
});

describe('embeddings', () => {
  it('POST /api/embed: one vector per input and the prompt count', async () => {
    const result = await client.embed({ model: 'nomic-embed-text', input: ['alpha', 'beta'] });
    expect(result.embeddings).toEqual([embeddingOf('alpha'), embeddingOf('beta')]);
    expect(result.prompt_eval_count).toBe(promptEvalCountOf({ input: ['alpha', 'beta'] }));
  });

  it('POST /api/embeddings (the older endpoint LobeChat calls): one vector, no counts', async () => {
    const result = await client.embeddings({ model: 'nomic-embed-text', prompt: 'alpha' });
    expect(result).toEqual({ embedding: embeddingOf('alpha') });
  });
});

describe('listing', () => {
  it('GET /api/tags lists its models and GET /api/version its version', async () => {
    expect((await client.list()).models.map((m) => m.name)).toEqual(DEFAULT_MODELS);
    expect(await client.version()).toEqual({ version: FAKE_OLLAMA_VERSION });
  });
});

describe('errors as Ollama writes them', () => {
  it('an error behaviour answers {"error": …} with its status, which ollama-js throws as a ResponseError (no retry)', async () => {
    fake.enqueue({ kind: 'error', status: 404, message: 'model "nope" not found, try pulling it first' });
    const error = (await client.chat({ model: 'nope', messages }).catch((e: unknown) => e)) as { name: string; error: string; status_code: number };
    expect(error).toMatchObject({ name: 'ResponseError', error: 'model "nope" not found, try pulling it first', status_code: 404 });
    expect(fake.requests).toHaveLength(1);
  });

  it('a missing model is a 400', async () => {
    const response = await fetch(`${fake.baseUrl}/api/chat`, { method: 'POST', body: JSON.stringify({ messages }) });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'model is required' });
  });

  it('an error mid-stream is a line of its own, which ollama-js throws', async () => {
    fake.enqueue({ kind: 'stream-error', afterPieces: 2, message: 'llama runner process has terminated' });
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const part of await client.chat({ model, messages, stream: true })) seen.push(part.message.content);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([DEFAULT_PIECE, DEFAULT_PIECE]);
    expect((failure as Error).message).toBe('llama runner process has terminated');
  });

  it('a dropped stream ends without a done line, which ollama-js reports', async () => {
    fake.enqueue({ kind: 'drop', afterPieces: 1 });
    const failure = await collect(await client.chat({ model, messages, stream: true })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error);
  });

  it('an unknown path gets gin’s plain 404', async () => {
    const response = await fetch(`${fake.baseUrl}/api/nothing`);
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('404 page not found');
  });

  it('records the authorization header, and with an apiKey refuses requests without it', async () => {
    await fake.close();
    fake = await startFakeOllama({ apiKey: 'secret' });
    const refused = await new Ollama({ host: fake.baseUrl }).chat({ model, messages }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status_code: 401, error: 'unauthorized' });
    await new Ollama({ host: fake.baseUrl, headers: { Authorization: 'Bearer secret' } }).chat({ model, messages });
    expect(fake.requests.map((r) => r.authorization)).toEqual([null, 'Bearer secret']);
  });

  it('counts a client that leaves mid-stream as aborted', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 50, chunkDelayMs: 5 });
    const stream = await client.chat({ model, messages, stream: true });
    for await (const _part of stream) {
      stream.abort();
      break;
    }
    await waitFor(() => fake.aborted === 1, 5000, 'the abort');
  });
});
