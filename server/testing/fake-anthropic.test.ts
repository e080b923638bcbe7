import Anthropic, { APIConnectionError, APIError, AuthenticationError, BadRequestError, InternalServerError, RateLimitError } from '@anthropic-ai/sdk';
import type { RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_PIECE, inputTokensOf, startFakeAnthropic, THINKING_PIECE, waitFor, type FakeAnthropic } from './fake-anthropic.js';

let fake: FakeAnthropic;
let client: Anthropic;

beforeEach(async () => {
  fake = await startFakeAnthropic();
  client = new Anthropic({ baseURL: fake.baseUrl, apiKey: 'sk-ant-test', maxRetries: 0 });
});

afterEach(async () => {
  await fake.close();
});

const model = 'claude-sonnet-4-5';
const messages = [{ role: 'user' as const, content: 'Say hi' }];
const body = { model, max_tokens: 1024, messages };

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

describe('messages, non-streaming', () => {
  it('answers with text and usage, and records the request', async () => {
    const message = await client.messages.create(body);
    expect(message).toMatchObject({ type: 'message', role: 'assistant', model, stop_reason: 'end_turn', stop_sequence: null });
    expect(message.id).toMatch(/^msg_/);
    expect(message.content).toEqual([{ type: 'text', text: DEFAULT_PIECE.repeat(20) }]);
    expect(message.usage).toEqual({
      input_tokens: inputTokensOf(body),
      output_tokens: 20,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      service_tier: 'standard',
    });
    const request = fake.requests[0];
    expect(request).toMatchObject({ method: 'POST', path: '/v1/messages', body, apiKey: 'sk-ant-test', anthropicVersion: '2023-06-01', servedPieces: 20 });
    expect(request?.headers['x-api-key']).toBe('sk-ant-test');
  });

  it('reports the cache classes it is told to, summing both TTLs into cache_creation_input_tokens', async () => {
    fake.enqueue({ kind: 'reply', text: ['Hello', ' world'], usage: { input_tokens: 5, cache_read_input_tokens: 100, cache_creation_5m: 30, cache_creation_1h: 12 } });
    const message = await client.messages.create(body);
    expect(message.content).toEqual([{ type: 'text', text: 'Hello world' }]);
    expect(message.usage).toMatchObject({
      input_tokens: 5,
      output_tokens: 2,
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 42,
      cache_creation: { ephemeral_5m_input_tokens: 30, ephemeral_1h_input_tokens: 12 },
    });
  });

  it('truncates at max_tokens (thinking counts) unless told to ignore it', async () => {
    fake.enqueue({ kind: 'reply', thinkingTokens: 3, outputTokens: 10 }, { kind: 'reply', outputTokens: 10, ignoreMaxTokens: true });
    const cut = await client.messages.create({ ...body, max_tokens: 5 });
    expect(cut.stop_reason).toBe('max_tokens');
    expect(cut.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    expect(cut.content[1]).toEqual({ type: 'text', text: DEFAULT_PIECE.repeat(2) });
    expect(cut.usage.output_tokens).toBe(5);
    const whole = await client.messages.create({ ...body, max_tokens: 5 });
    expect(whole.stop_reason).toBe('end_turn');
    expect(whole.usage.output_tokens).toBe(10);
  });

  it('answers a tool_use with its parsed input', async () => {
    fake.enqueue({ kind: 'reply', toolUse: { name: 'get_weather', input: ['{"city"', ': "Paris"}'] } });
    const message = await client.messages.create(body);
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([{ type: 'tool_use', id: expect.stringMatching(/^toolu_/) as unknown, name: 'get_weather', input: { city: 'Paris' } }]);
    expect(message.usage.output_tokens).toBe(2);
  });
});

describe('messages, streaming', () => {
  it('streams the documented event sequence; finalMessage has the whole usage', async () => {
    fake.enqueue({ kind: 'reply', text: ['Hel', 'lo'], usage: { cache_read_input_tokens: 7, cache_creation_1h: 4 } });
    const stream = client.messages.stream(body);
    const events: RawMessageStreamEvent[] = [];
    // Cloned: the SDK's snapshot is message_start's own message, which it updates as deltas come.
    stream.on('streamEvent', (event) => events.push(structuredClone(event)));
    const final = await stream.finalMessage();
    // The SDK drops pings; the raw framing test below sees them.
    expect(events.map((e) => e.type)).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const start = events[0];
    // message_start carries the input side (and the only 5m/1h split) with output_tokens 1.
    expect(start?.type === 'message_start' && start.message.usage).toMatchObject({
      input_tokens: inputTokensOf(body),
      output_tokens: 1,
      cache_read_input_tokens: 7,
      cache_creation_input_tokens: 4,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 4 },
    });
    expect(events[5]).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { input_tokens: inputTokensOf(body), cache_creation_input_tokens: 4, cache_read_input_tokens: 7, output_tokens: 2 },
    });
    expect(final.content).toEqual([{ type: 'text', text: 'Hello' }]);
    expect(final.usage).toMatchObject({ input_tokens: inputTokensOf(body), output_tokens: 2, cache_read_input_tokens: 7 });
    expect(fake.requests[0]?.servedPieces).toBe(2);
  });

  it('frames events as `event:`/`data:` pairs with a ping after the first block opens', async () => {
    const response = await fetch(`${fake.baseUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'k', 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true, max_tokens: 1 }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    const frames = (await response.text()).split('\n\n').filter(Boolean);
    const names = frames.map((frame) => /^event: (\w+)\ndata: \{"type":"(\w+)"/.exec(frame)?.slice(1));
    expect(names.map((pair) => pair?.[0])).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    for (const pair of names) expect(pair?.[0]).toBe(pair?.[1]);
    expect(frames.at(-2)).toContain('"stop_reason":"max_tokens"');
  });

  it('streams thinking (with its signature) and tool_use input deltas', async () => {
    fake.enqueue({ kind: 'reply', thinkingTokens: 2, text: ['Checking.'], toolUse: { name: 'get_weather', input: ['{"city":', '"Paris"}'] } });
    const stream = client.messages.stream(body);
    const deltas: string[] = [];
    stream.on('streamEvent', (event) => {
      if (event.type === 'content_block_delta') deltas.push(`${event.index}:${event.delta.type}`);
    });
    const final = await stream.finalMessage();
    expect(deltas).toEqual(['0:thinking_delta', '0:thinking_delta', '0:signature_delta', '1:text_delta', '2:input_json_delta', '2:input_json_delta']);
    expect(final.content[0]).toMatchObject({ type: 'thinking', thinking: THINKING_PIECE.repeat(2), signature: expect.any(String) as unknown });
    expect(final.content[1]).toMatchObject({ type: 'text', text: 'Checking.' });
    expect(final.content[2]).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { city: 'Paris' } });
    expect(final.stop_reason).toBe('tool_use');
    expect(final.usage.output_tokens).toBe(5);
  });

  it('streams slowly with a chunk delay', async () => {
    fake.enqueue({ kind: 'reply', outputTokens: 3, chunkDelayMs: 40 });
    const started = Date.now();
    await collect(await client.messages.create({ ...body, stream: true }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(40 * 7);
  });

  it('a dropped connection surfaces as an SDK error, after the pieces it served', async () => {
    fake.enqueue({ kind: 'drop', afterPieces: 3 });
    const stream = client.messages.stream(body);
    let text = '';
    stream.on('text', (delta) => (text += delta));
    await expect(stream.finalMessage()).rejects.toThrow();
    expect(text).toBe(DEFAULT_PIECE.repeat(3));
    expect(fake.requests[0]?.servedPieces).toBe(3);
  });

  it('a mid-stream `event: error` surfaces as an APIError carrying the error body', async () => {
    fake.enqueue({ kind: 'stream-error', afterPieces: 2, type: 'overloaded_error' });
    const error = await collect(await client.messages.create({ ...body, stream: true })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).error).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(fake.requests[0]?.servedPieces).toBe(2);
  });
});

describe('errors and auth', () => {
  it('answers errors in Anthropic shape with the matching status and SDK class', async () => {
    fake.enqueue({ kind: 'error', type: 'rate_limit_error' }, { kind: 'error', type: 'overloaded_error' }, { kind: 'error', type: 'invalid_request_error', message: 'bad' });
    const rate = await client.messages.create(body).catch((e: unknown) => e);
    expect(rate).toBeInstanceOf(RateLimitError);
    expect((rate as RateLimitError).error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect((rate as RateLimitError).requestID).toMatch(/^req_/);
    const overloaded = await client.messages.create(body).catch((e: unknown) => e);
    expect(overloaded).toBeInstanceOf(InternalServerError);
    expect((overloaded as InternalServerError).status).toBe(529);
    await expect(client.messages.create(body)).rejects.toBeInstanceOf(BadRequestError);
  });

  it('x-should-retry: false stops the SDK retrying; without it, the SDK retries a 529', async () => {
    const retrying = new Anthropic({ baseURL: fake.baseUrl, apiKey: 'k', maxRetries: 2 });
    fake.enqueue({ kind: 'error', type: 'overloaded_error', shouldRetry: false });
    await expect(retrying.messages.create(body)).rejects.toBeInstanceOf(InternalServerError);
    expect(fake.requests).toHaveLength(1);
    fake.enqueue({ kind: 'error', type: 'overloaded_error', headers: { 'retry-after-ms': '1' } });
    const message = await retrying.messages.create(body);
    expect(message.stop_reason).toBe('end_turn');
    expect(fake.requests).toHaveLength(3);
  });

  it('non-streaming requests get a drop before any byte, and a stream-error as an HTTP error', async () => {
    fake.enqueue({ kind: 'drop', afterPieces: 0 }, { kind: 'stream-error', afterPieces: 0 });
    await expect(client.messages.create(body)).rejects.toBeInstanceOf(APIConnectionError);
    const error = await client.messages.create(body).catch((e: unknown) => e);
    expect((error as APIError).status).toBe(529);
  });

  it('checks the key when one is configured, taking no behaviour for a refused request', async () => {
    fake.apiKey = 'sk-ant-right';
    fake.enqueue({ kind: 'reply', text: ['ok'] });
    const wrong = await client.messages.create(body).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect((wrong as AuthenticationError).error).toEqual({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
    const right = new Anthropic({ baseURL: fake.baseUrl, apiKey: 'sk-ant-right', maxRetries: 0 });
    const message = await right.messages.create(body);
    expect(message.content).toEqual([{ type: 'text', text: 'ok' }]);
    // A bearer token (authToken) is accepted too, as upstream does.
    const bearer = new Anthropic({ baseURL: fake.baseUrl, apiKey: null, authToken: 'sk-ant-right', maxRetries: 0 });
    await bearer.messages.create(body);
    expect(fake.requests[2]).toMatchObject({ apiKey: 'sk-ant-right' });
    expect(fake.requests[2]?.headers.authorization).toBe('Bearer sk-ant-right');
  });

  it('rejects a missing max_tokens and unknown paths in Anthropic shape', async () => {
    const response = await fetch(`${fake.baseUrl}/v1/messages`, { method: 'POST', body: JSON.stringify({ model, messages }) });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
    const missing = await fetch(`${fake.baseUrl}/v1/complete`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });
});

describe('harness', () => {
  it('hang holds the request until the client gives up, which counts as aborted', async () => {
    fake.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = client.messages.create(body, { signal: controller.signal }).catch((e: unknown) => e);
    await fake.waitForRequests(1);
    controller.abort();
    expect(await pending).toBeInstanceOf(APIError);
    await waitFor(() => fake.aborted === 1, 2000, 'the abort to be counted');
  });
});

describe('count_tokens', () => {
  it('counts the same input tokens a message reports', async () => {
    const counted = await client.messages.countTokens({ model, messages, system: 'Be brief.' });
    expect(counted).toEqual({ input_tokens: inputTokensOf({ model, messages, system: 'Be brief.' }) });
    const message = await client.messages.create({ ...body, system: 'Be brief.' });
    expect(message.usage.input_tokens).toBe(counted.input_tokens);
    expect(fake.requests[0]?.path).toBe('/v1/messages/count_tokens');
  });
});
