import { describe, expect, it } from 'vitest';
import { chatStream } from './openai-chat-stream.js';
import { chatRequestSchema, type ChatRequest } from './openai-chat.js';
import { classifyAll, eventsOf, fixtureText, type Fixture } from './stream-fixtures.test-util.js';

const request = (includeUsage: boolean): ChatRequest =>
  chatRequestSchema.parse({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) });

const DONE = 'data: [DONE]\n\n';
/** The recorded usage chunk of a fixture (its second-to-last event). */
const usageChunk = (name: Fixture) => eventsOf(fixtureText(name)).at(-2)?.raw;

/** A chunk as OpenAI-compatible upstreams send them, for what the fake does not send. */
const chunk = (fields: object) => `data: ${JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', ...fields })}\n\n`;
const choice = (delta: object, index = 0) => ({ index, delta, logprobs: null, finish_reason: null });

describe('Chat Completions stream events, classified (recorded from the fake upstream)', () => {
  it.each<[Fixture, boolean, string[], string]>([
    ['chat-content', true, ['pass', 'pass " hi"', 'pass " hi"', 'pass " hi"', 'pass', 'hold usage 8/3', 'hold'], 'usage chunk, then [DONE]'],
    ['chat-content', false, ['pass', 'pass " hi"', 'pass " hi"', 'pass " hi"', 'pass', 'hold usage 8/3', 'hold'], '[DONE] alone'],
    ['chat-reasoning', true, ['pass', 'pass " hi"', 'pass " hi"', 'pass " hi"', 'pass " hi"', 'pass', 'hold usage 8/4', 'hold'], 'usage chunk, then [DONE]'],
    ['chat-tool-call', true, ['pass "get_weather"', 'pass "{\\"city\\""', 'pass ":\\"Paris\\"}"', 'pass', 'hold usage 8/2', 'hold'], 'usage chunk, then [DONE]'],
    ['chat-no-usage-asked', true, ['pass', 'pass " hi"', 'pass " hi"', 'pass', 'hold'], '[DONE] alone'],
  ])('%s (client asked for usage: %s): %j; it closes complete with the %s', (name, includeUsage, steps, ending) => {
    const { state, steps: actual } = classifyAll(chatStream, request(includeUsage), fixtureText(name));
    expect(actual).toEqual(steps);
    const heldUsage = ending.startsWith('usage') ? usageChunk(name) : '';
    expect(chatStream.closed(state, 'unfinished')).toEqual({ complete: true, events: `${heldUsage}${DONE}` });
  });

  it.each<[string, string, boolean, string]>([
    ['a keep-alive comment (OpenRouter sends them) is not passed on', ': OPENROUTER PROCESSING\n\n', true, 'hold'],
    ['a refusal is output', chunk({ choices: [choice({ refusal: 'I can’t help with that.' })] }), true, 'pass "I can’t help with that."'],
    ['an error object mid-stream goes to the client as it came', 'data: {"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}\n\n', true, 'pass'],
    ['a chunk that is not JSON goes to the client as it came', 'data: {"id": oops\n\n', true, 'pass'],
    ['usage on a content chunk (as some upstreams send it) is seen, and the chunk passes whole for a client that asked', chunk({ choices: [choice({ content: ' hi' })], usage: { prompt_tokens: 8, completion_tokens: 1 } }), true, 'pass " hi" usage 8/1'],
    ['… and is taken out of it for a client that did not (nothing counted from such a chunk)', chunk({ choices: [choice({ content: ' hi' })], usage: { prompt_tokens: 8, completion_tokens: 1 } }), false, 'rewrite usage 8/1'],
  ])('%s', (_what, text, includeUsage, step) => {
    expect(classifyAll(chatStream, request(includeUsage), text).steps).toEqual([step]);
  });

  it('a rewritten chunk is the upstream chunk without its usage', () => {
    const state = chatStream.begin(request(false), { model: 'gpt-4o-mini', assemble: false });
    const [event] = eventsOf(chunk({ choices: [choice({ content: ' hi' })], usage: { prompt_tokens: 8, completion_tokens: 1 } }));
    expect(event && chatStream.classify(state, event)).toMatchObject({ kind: 'rewrite', text: chunk({ choices: [choice({ content: ' hi' })] }) });
  });

  it('an assembled answer keeps the usage chunk, as a whole answer carries usage', () => {
    const state = chatStream.begin(request(false), { model: 'gpt-4o-mini', assemble: true });
    for (const event of eventsOf(fixtureText('chat-content'))) chatStream.classify(state, event);
    expect(chatStream.closed(state, '').events).toBe(`${usageChunk('chat-content')}${DONE}`);
  });
});

describe('how the proxy ends a chat stream itself', () => {
  /** The state after the role chunk and two pieces of chat-content were relayed. */
  function midStream(includeUsage: boolean) {
    const state = chatStream.begin(request(includeUsage), { model: 'gpt-4o-mini', assemble: false });
    const events = eventsOf(fixtureText('chat-content'));
    for (const event of events.slice(0, 3)) chatStream.classify(state, event);
    const first = JSON.parse(events[0]?.data ?? '{}') as { id: string; created: number };
    return { state, base: { id: first.id, object: 'chat.completion.chunk', created: first.created, model: 'gpt-4o-mini' } };
  }
  const finish = (index: number) => ({ index, delta: {}, logprobs: null, finish_reason: 'length' });
  const data = (json: object) => `data: ${JSON.stringify(json)}\n\n`;

  it('cut: every choice finishes with `length`, the usage as charged follows for a client that asked, then [DONE]', () => {
    const { state, base } = midStream(true);
    const events = chatStream.cutEvents(state, { charged: { inputTokens: 8, outputTokens: 2 }, countedOutputTokens: 2, nowMs: 0 });
    expect(events).toBe(data({ ...base, choices: [finish(0)] }) + data({ ...base, choices: [], usage: { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 } }) + DONE);
  });

  it('cut: no usage chunk for a client that did not ask, nor when the request had been settled already', () => {
    const { state, base } = midStream(false);
    expect(chatStream.cutEvents(state, { charged: { inputTokens: 8, outputTokens: 2 }, countedOutputTokens: 2, nowMs: 0 })).toBe(data({ ...base, choices: [finish(0)] }) + DONE);
    const asked = midStream(true);
    expect(chatStream.cutEvents(asked.state, { charged: null, countedOutputTokens: 2, nowMs: 0 })).toBe(data({ ...asked.base, choices: [finish(0)] }) + DONE);
  });

  it('cut: with several choices (n > 1), each one seen is finished, in the order they came', () => {
    const state = chatStream.begin(request(false), { model: 'gpt-4o', assemble: false });
    for (const event of eventsOf(chunk({ choices: [choice({ content: 'a' }, 1)] }) + chunk({ choices: [choice({ content: 'b' }, 0)] }))) chatStream.classify(state, event);
    const base = { id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
    expect(chatStream.cutEvents(state, { charged: null, countedOutputTokens: 2, nowMs: 0 })).toBe(data({ ...base, choices: [finish(1)] }) + data({ ...base, choices: [finish(0)] }) + DONE);
  });

  it('cut before any chunk: choice 0 finishes, under the model asked upstream', () => {
    const state = chatStream.begin(request(false), { model: 'gpt-4o-mini-2024-07-18', assemble: false });
    expect(chatStream.cutEvents(state, { charged: null, countedOutputTokens: 0, nowMs: 0 })).toBe(
      data({ object: 'chat.completion.chunk', model: 'gpt-4o-mini-2024-07-18', choices: [finish(0)] }) + DONE,
    );
  });

  it('upstream broke off: an error object, on which the SDKs raise an APIError', () => {
    const { state } = midStream(true);
    expect(chatStream.brokeOffEvents(state, 'The upstream "fake" broke off the stream: other side closed')).toBe(
      data({ error: { message: 'The upstream "fake" broke off the stream: other side closed', type: 'server_error', param: null, code: 'upstream_failed' } }),
    );
  });

  it('closed without a usage chunk: complete all the same (a chat stream has no terminal event), with [DONE]', () => {
    const { state } = midStream(true);
    expect(chatStream.closed(state, 'unfinished')).toEqual({ complete: true, events: DONE });
  });
});
