import OpenAI, { type APIError, type BadRequestError, type NotFoundError, type RateLimitError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_PIECE, embeddingOf, promptTokensOf, startFakeOpenAI, waitFor, type FakeOpenAI } from './fake-openai.js';

let fake: FakeOpenAI;
let client: OpenAI;

beforeEach(async () => {
  fake = await startFakeOpenAI();
  client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'sk-test', maxRetries: 0 });
});

afterEach(async () => {
  await fake.close();
});

const messages = [{ role: 'user' as const, content: 'Say hi' }];

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** The raw SSE text of a request, read with fetch. */
async function raw(path: string, body: unknown): Promise<{ response: Response; text: string }> {
  const response = await fetch(`${fake.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-raw', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { response, text: await response.text() };
}

function sseData(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter((event) => event.length > 0)
    .map((event) => {
      const data = event.split('\n').find((line) => line.startsWith('data: '));
      return data === 'data: [DONE]' ? '[DONE]' : (JSON.parse(data?.slice('data: '.length) ?? 'null') as unknown);
    });
}

describe('chat completions', () => {
  it('answers a non-streaming request with usage, and records the request', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const body = { model: 'gpt-4o-mini', messages };
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('gpt-4o-mini');
    expect(completion.choices[0]?.message).toMatchObject({ role: 'assistant', content: DEFAULT_PIECE.repeat(20), refusal: null });
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage).toEqual({
      prompt_tokens: promptTokensOf(body),
      completion_tokens: 20,
      total_tokens: promptTokensOf(body) + 20,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
    expect(fake.requests).toHaveLength(1);
    const request = fake.requests[0];
    expect(request).toMatchObject({ method: 'POST', path: '/v1/chat/completions', body, apiKey: 'sk-test' });
    expect(request?.headers.authorization).toBe('Bearer sk-test');
    expect(request?.headers['content-type']).toContain('application/json');
  });

  it('applies usage overrides and can omit usage', async () => {
    fake.enqueue(
      { kind: 'reply', text: ['Hello', ' world'], usage: { prompt_tokens: 7, cached_tokens: 3 } },
      { kind: 'reply', reportUsage: false },
    );
    const first = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(first.choices[0]?.message.content).toBe('Hello world');
    expect(first.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 2, total_tokens: 9, prompt_tokens_details: { cached_tokens: 3 } });
    const second = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(second).not.toHaveProperty('usage');
  });

  it('streams without usage unless stream_options.include_usage is set', async () => {
    const chunks = await collect(await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }));
    expect(chunks).toHaveLength(1 + 20 + 1); // role, pieces, finish
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]?.id && c.created === chunks[0]?.created)).toBe(true);
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '', refusal: null });
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(DEFAULT_PIECE.repeat(20));
    expect(chunks.at(-1)?.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
  });

  it('streams a final usage chunk, and usage: null on every other chunk, when include_usage is set', async () => {
    const body = { model: 'gpt-4o-mini', messages };
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    const chunks = await collect(stream);
    expect(chunks).toHaveLength(1 + 20 + 1 + 1);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ prompt_tokens: promptTokensOf(body), completion_tokens: 20, total_tokens: promptTokensOf(body) + 20 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(DEFAULT_PIECE.repeat(20));
  });

  it('sends no usage chunk when reportUsage is false, even if asked', async () => {
    fake.enqueue({ kind: 'reply', reportUsage: false, outputTokens: 3 });
    const chunks = await collect(await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } }));
    expect(chunks).toHaveLength(1 + 3 + 1);
    expect(chunks.every((c) => c.usage === null)).toBe(true);
  });

  it('writes each SSE event as "data: <json>\\n\\n", ends with [DONE], and flushes chunk by chunk', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 4, chunkDelayMs: 50 });
    const response = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-raw', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const arrivals: number[] = [];
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(Date.now());
      text += decoder.decode(value, { stream: true });
    }
    // Chunks are written 50 ms apart (6 gaps); buffered output would arrive all at once.
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(150);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = text.split('\n\n').slice(0, -1);
    expect(events).toHaveLength(1 + 4 + 1 + 1 + 1);
    for (const event of events) expect(event).toMatch(/^data: [^\n]+$/);
    const data = sseData(text);
    expect(data.at(-1)).toBe('[DONE]');
    expect(data[1]).toMatchObject({ choices: [{ index: 0, delta: { content: DEFAULT_PIECE }, logprobs: null, finish_reason: null }], usage: null });
  });

  it('respects max_tokens and max_completion_tokens with finish_reason "length", unless ignoreMaxTokens', async () => {
    const capped = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 });
    expect(capped.choices[0]?.finish_reason).toBe('length');
    expect(capped.choices[0]?.message.content).toBe(DEFAULT_PIECE.repeat(5));
    expect(capped.usage?.completion_tokens).toBe(5);

    const chunks = await collect(
      await client.chat.completions.create({ model: 'o3-mini', messages, max_completion_tokens: 3, stream: true, stream_options: { include_usage: true } }),
    );
    expect(chunks.filter((c) => c.choices[0]?.delta.content === DEFAULT_PIECE)).toHaveLength(3);
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(3);

    fake.enqueue({ kind: 'reply', ignoreMaxTokens: true });
    const ignored = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 });
    expect(ignored.choices[0]?.finish_reason).toBe('stop');
    expect(ignored.usage?.completion_tokens).toBe(20);
  });

  it('streams reasoning_content deltas before content, counted in completion and reasoning tokens and against the max', async () => {
    fake.enqueue({ kind: 'reply', reasoningTokens: 4, outputTokens: 3 }, { kind: 'reply', reasoningTokens: 4, outputTokens: 3 });
    const chunks = await collect(await client.chat.completions.create({ model: 'o3-mini', messages, stream: true, stream_options: { include_usage: true } }));
    const deltas = chunks.map((c) => c.choices[0]?.delta as (ChatCompletionChunk.Choice.Delta & { reasoning_content?: string }) | undefined);
    const reasoning = deltas.filter((d) => d?.reasoning_content !== undefined);
    expect(reasoning).toHaveLength(4);
    expect(reasoning.every((d) => d?.content === null)).toBe(true);
    const firstContent = deltas.findIndex((d) => typeof d?.content === 'string' && d.content !== '');
    const lastReasoning = deltas.findLastIndex((d) => d?.reasoning_content !== undefined);
    expect(lastReasoning).toBeLessThan(firstContent);
    expect(chunks.at(-1)?.usage).toMatchObject({ completion_tokens: 7, completion_tokens_details: { reasoning_tokens: 4 } });

    const capped = await client.chat.completions.create({ model: 'o3-mini', messages, max_completion_tokens: 5 });
    expect(capped.choices[0]?.finish_reason).toBe('length');
    expect(capped.choices[0]?.message.content).toBe(DEFAULT_PIECE);
    expect(capped.usage).toMatchObject({ completion_tokens: 5, completion_tokens_details: { reasoning_tokens: 4 } });
  });

  it('streams a tool call that the SDK stream helper assembles', async () => {
    const toolCall = { name: 'get_weather', arguments: ['{"city"', ':"Par', 'is"}'] };
    fake.enqueue({ kind: 'reply', toolCall }, { kind: 'reply', toolCall });
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const stream = client.chat.completions.stream({ model: 'gpt-4o-mini', messages, tools, stream_options: { include_usage: true } });
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.tool_calls).toHaveLength(1);
    const call = choice?.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    expect(call?.id).toMatch(/^call_/);
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"city":"Paris"}' });
    expect(final.usage?.completion_tokens).toBe(3);

    const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools });
    expect(plain.choices[0]?.finish_reason).toBe('tool_calls');
    expect(plain.choices[0]?.message.content).toBeNull();
    expect(plain.choices[0]?.message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
  });

  it('puts the tool call in the role chunk and argument pieces at index 0 on the wire', async () => {
    fake.enqueue({ kind: 'reply', toolCall: { name: 'f', arguments: ['{}'] } });
    const { text } = await raw('/chat/completions', { model: 'gpt-4o-mini', messages, stream: true });
    const data = sseData(text) as ChatCompletionChunk[];
    expect(data[0]?.choices[0]?.delta).toMatchObject({ role: 'assistant', content: null, tool_calls: [{ index: 0, type: 'function', function: { name: 'f', arguments: '' } }] });
    expect(data[1]?.choices[0]?.delta).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] });
    expect(data[2]?.choices[0]?.finish_reason).toBe('tool_calls');
  });
});

describe('errors', () => {
  it('maps a 500 to InternalServerError and a 429 to RateLimitError, with OpenAI error bodies and extra headers', async () => {
    fake.enqueue({ kind: 'error', status: 500 }, { kind: 'error', status: 429, headers: { 'retry-after': '7' } }, { kind: 'error', status: 400 });
    const internal = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e);
    expect(internal).toBeInstanceOf(OpenAI.InternalServerError);
    expect((internal as APIError).status).toBe(500);
    expect((internal as APIError).type).toBe('server_error');

    const limited = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limited as RateLimitError).status).toBe(429);
    expect((limited as RateLimitError).code).toBe('rate_limit_exceeded');
    expect((limited as RateLimitError).headers?.get('retry-after')).toBe('7');

    const bad = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as BadRequestError).error).toEqual({ message: 'Invalid request.', type: 'invalid_request_error', param: null, code: null });
  });

  it('answers unknown paths with 404 and invalid bodies with 400, consuming no behaviour for unknown paths', async () => {
    fake.enqueue({ kind: 'reply', text: ['queued'] });
    const notFound = await client.get('/nope').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect((notFound as NotFoundError).message).toContain('Invalid URL (GET /v1/nope)');
    const missing = await raw('/chat/completions', { model: 'gpt-4o-mini' });
    expect(missing.response.status).toBe(400);
    expect(JSON.parse(missing.text)).toMatchObject({ error: { param: 'messages', code: 'missing_required_parameter' } });
    // The queued reply went to the chat request above (which failed validation), not to the 404.
    const after = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 1 });
    expect(after.choices[0]?.message.content).toBe(DEFAULT_PIECE);
  });
});

describe('responses', () => {
  it('answers a non-streaming request with a Response object and usage', async () => {
    const body = { model: 'gpt-4o-mini', input: 'Say hi' };
    fake.enqueue({ kind: 'reply', text: ['Hel', 'lo'], reasoningTokens: 2 });
    const response = await client.responses.create(body);
    expect(response).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-4o-mini', incomplete_details: null, error: null });
    expect(response.id).toMatch(/^resp_/);
    expect(response.output_text).toBe('Hello');
    expect(response.output).toEqual([
      { id: expect.stringMatching(/^msg_/), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello', annotations: [], logprobs: [] }] },
    ]);
    expect(response.usage).toEqual({
      input_tokens: promptTokensOf(body),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 4,
      output_tokens_details: { reasoning_tokens: 2 },
      total_tokens: promptTokensOf(body) + 4,
    });
  });

  it('stops at max_output_tokens with status "incomplete"', async () => {
    const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hi', max_output_tokens: 16 });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(response.output_text).toBe(DEFAULT_PIECE.repeat(16));
    expect(response.usage?.output_tokens).toBe(16);
  });

  it('streams the event sequence with sequence numbers and usage on response.completed', async () => {
    const body = { model: 'gpt-4o-mini', input: [{ role: 'user' as const, content: 'Say hi' }] };
    fake.enqueue({ kind: 'reply', outputTokens: 3 });
    const events = await collect(await client.responses.create({ ...body, stream: true }));
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const completed = events.at(-1);
    if (completed?.type !== 'response.completed') throw new Error('expected response.completed');
    expect(completed.response.usage).toMatchObject({ input_tokens: promptTokensOf(body), output_tokens: 3, total_tokens: promptTokensOf(body) + 3 });
    expect(events[0]?.type === 'response.created' && events[0].response.status).toBe('in_progress');
  });

  it('streams through the SDK helper, with event: lines on the wire and no [DONE]', async () => {
    fake.enqueue({ kind: 'reply', text: ['a', 'b'] }, { kind: 'reply', outputTokens: 5 });
    const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'hi' });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
    const final = await stream.finalResponse();
    expect(deltas).toEqual(['a', 'b']);
    expect(final.output_text).toBe('ab');
    expect(final.usage?.output_tokens).toBe(2);

    const { text } = await raw('/responses', { model: 'gpt-4o-mini', input: 'hi', stream: true, max_output_tokens: 2 });
    expect(text).not.toContain('[DONE]');
    const events = text.split('\n\n').slice(0, -1);
    for (const event of events) expect(event).toMatch(/^event: ([a-z_.]+)\ndata: \{"type":"\1","sequence_number":\d+/);
    expect(events.at(-1)).toMatch(/^event: response\.incomplete\n/);
    expect(sseData(text).at(-1)).toMatchObject({ response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, usage: { output_tokens: 2 } } });
  });
});

describe('embeddings and models', () => {
  it('returns embeddings that the SDK decodes from base64, and floats when asked', async () => {
    const decoded = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
    expect(fake.requests[0]?.body).toMatchObject({ encoding_format: 'base64' });
    expect(decoded.object).toBe('list');
    expect(decoded.data.map((d) => d.index)).toEqual([0, 1]);
    expect(decoded.data[0]?.embedding).toEqual(embeddingOf('one'));
    expect(decoded.data[1]?.embedding).toEqual(embeddingOf('two'));
    expect(decoded.data[0]?.embedding).toHaveLength(8);
    expect(decoded.usage).toEqual({ prompt_tokens: promptTokensOf({ input: ['one', 'two'] }), total_tokens: promptTokensOf({ input: ['one', 'two'] }) });

    const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one', encoding_format: 'float' });
    expect(floats.data[0]).toEqual({ object: 'embedding', index: 0, embedding: embeddingOf('one') });
  });

  it('lists the configured models', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['gpt-4o-mini', 'gpt-4o', 'o3-mini', 'text-embedding-3-small']);
    expect(page.data[0]).toMatchObject({ object: 'model', owned_by: 'system' });

    const other = await startFakeOpenAI({ models: ['only-one'] });
    try {
      const otherClient = new OpenAI({ baseURL: other.baseUrl, apiKey: 'sk-test', maxRetries: 0 });
      expect((await otherClient.models.list()).data.map((m) => m.id)).toEqual(['only-one']);
    } finally {
      await other.close();
    }
  });
});

describe('failures and control', () => {
  it('drop: the SDK stream iteration throws after the pieces already sent', async () => {
    fake.enqueue({ kind: 'drop', afterPieces: 2 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toThrow();
    expect(seen).toEqual(['', DEFAULT_PIECE, DEFAULT_PIECE]);
    expect(fake.aborted).toBe(0);

    fake.enqueue({ kind: 'drop', afterPieces: 1 });
    const responses = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', stream: true });
    await expect(collect(responses)).rejects.toThrow();

    fake.enqueue({ kind: 'drop', afterPieces: 0 });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it('hang: an SDK timeout rejects with APIConnectionTimeoutError and the fake counts the abort', async () => {
    fake.enqueue({ kind: 'hang' });
    const started = Date.now();
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages }, { timeout: 200 })).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor(() => fake.aborted === 1, 2000, 'the fake to see the client go away');
    expect(fake.aborted).toBe(1);
  });

  it('a client aborting a slow stream counts as aborted', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 100, chunkDelayMs: 20 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    let n = 0;
    for await (const _chunk of stream) if (++n === 3) break; // break aborts the request
    await waitFor(() => fake.aborted === 1, 2000, 'the abort');
  });

  it('close() ends a hanging request promptly without counting it as aborted', async () => {
    const local = await startFakeOpenAI({ defaultBehaviour: { kind: 'hang' } });
    const localClient = new OpenAI({ baseURL: local.baseUrl, apiKey: 'sk-test', maxRetries: 0, timeout: 10_000 });
    const pending = localClient.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e);
    await local.waitForRequests(1);
    const started = Date.now();
    await local.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(local.aborted).toBe(0);
  });

  it('uses queued behaviours in order, then defaultBehaviour; waitForRequests waits for requests', async () => {
    fake.defaultBehaviour = { kind: 'reply', text: ['default'] };
    fake.enqueue({ kind: 'reply', text: ['first'] }, { kind: 'error', status: 503 });
    const waiting = fake.waitForRequests(3);
    const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const second = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e);
    const third = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    await waiting;
    expect(first.choices[0]?.message.content).toBe('first');
    expect(second).toBeInstanceOf(OpenAI.InternalServerError);
    expect((second as APIError).status).toBe(503);
    expect(third.choices[0]?.message.content).toBe('default');
    await expect(fake.waitForRequests(4, 50)).rejects.toThrow(/timed out/);
  });

  it('delays the first byte by firstByteDelayMs', async () => {
    fake.enqueue({ kind: 'reply', firstByteDelayMs: 150, outputTokens: 1 });
    const started = Date.now();
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});
