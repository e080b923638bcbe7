import { describe, expect, it } from 'vitest';
import { parseEvent } from '../sse.js';
import { messagesRequestSchema, type MessagesRequest } from './anthropic-messages.js';
import { messagesStream } from './anthropic-stream.js';
import { mergeStreamUsage } from './anthropic-usage.js';
import { classifyAll, eventsOf, fixtureText, type Fixture } from './stream-fixtures.test-util.js';

const request: MessagesRequest = messagesRequestSchema.parse({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] });
const context = { model: 'claude-sonnet-4-5', assemble: false };

const named = (type: string, fields: object = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;
const dataOf = (text: string) => JSON.parse(parseEvent(text).data ?? 'null') as Record<string, unknown>;

describe('Anthropic Messages stream events, classified (recorded from the fake upstream)', () => {
  it.each<[Fixture, string[]]>([
    // message_start carries the prompt (8) and output 1; message_delta the cumulative output.
    ['anthropic-text', ['pass usage 8/1', 'pass', 'pass', 'pass " hi"', 'pass " hi"', 'pass " hi"', 'pass', 'pass usage 8/3', 'terminal usage 8/3']],
    [
      'anthropic-thinking-tool',
      // 8 uncached + 100 read + 50 written; the signature is not generated text.
      ['pass usage 158/1', 'pass', 'pass', 'pass " hmm"', 'pass " hmm"', 'pass', 'pass', 'pass', 'pass " hi"', 'pass', 'pass', 'pass "{\\"city\\""', 'pass ":\\"Paris\\"}"', 'pass', 'pass usage 158/5', 'terminal usage 158/5'],
    ],
    ['anthropic-max-tokens', ['pass usage 8/1', 'pass', 'pass', 'pass " hi"', 'pass " hi"', 'pass', 'pass usage 8/2', 'terminal usage 8/2']],
  ])('%s: %j', (name, steps) => {
    const { state, steps: actual } = classifyAll(messagesStream, request, fixtureText(name), context);
    expect(actual).toEqual(steps);
    expect(state.openBlocks.size).toBe(0);
  });

  it('settles on the cache classes of message_start, the 1-hour split included, which message_delta does not repeat', () => {
    const events = eventsOf(fixtureText('anthropic-thinking-tool'));
    const state = messagesStream.begin(request, context);
    const last = events.map((event) => messagesStream.classify(state, event)).at(-1);
    expect(last).toEqual({
      kind: 'terminal',
      usage: { inputTokens: 158, cachedTokens: 100, cacheWriteTokens: 50, cacheWrite1hTokens: 20, outputTokens: 5, reasoningTokens: 0 },
    });
  });

  it.each<[string, string, string]>([
    ['a ping is passed on', named('ping'), 'pass'],
    ['a keep-alive comment is passed on', ': keep-alive\n\n', 'pass'],
    ['a citation is not generated text', named('content_block_delta', { index: 0, delta: { type: 'citations_delta', citation: { cited_text: 'x' } } }), 'pass'],
    ['an event known only by its event name', 'event: content_block_delta\ndata: {"index":0,"delta":{"type":"text_delta","text":" yo"}}\n\n', 'pass " yo"'],
    ['an empty text delta is nothing to count', named('content_block_delta', { index: 0, delta: { type: 'text_delta', text: '' } }), 'pass'],
    ['an event that is not JSON goes to the client as it came', 'event: content_block_delta\ndata: {oops\n\n', 'pass'],
    ['an event type to come is passed on', named('content_block_mystery', { index: 0 }), 'pass'],
    ['message_stop without any usage settles on our count', named('message_stop'), 'terminal'],
    ['impossible counts are not charged on', named('message_delta', { delta: {}, usage: { output_tokens: -3 } }), 'pass'],
  ])('%s', (_what, text, step) => {
    expect(classifyAll(messagesStream, request, text, context).steps).toEqual([step]);
  });
});

describe('how the proxy ends a Messages stream itself', () => {
  it('cut: stops the open block, then message_delta with max_tokens and the usage as charged, then message_stop', () => {
    const state = messagesStream.begin(request, context);
    for (const event of eventsOf(fixtureText('anthropic-text')).slice(0, 4)) messagesStream.classify(state, event);
    const events = eventsOf(messagesStream.cutEvents(state, { charged: { inputTokens: 8, outputTokens: 1 }, countedOutputTokens: 1, nowMs: 0 }));
    expect(events.map((e) => e.event)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(dataOf(events[0]?.raw ?? '')).toEqual({ type: 'content_block_stop', index: 0 });
    expect(dataOf(events[1]?.raw ?? '')).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'max_tokens', stop_sequence: null },
      usage: { input_tokens: 8, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
    });
  });

  it('a stream that closes without message_stop is unfinished: an error event, unless the upstream sent one', () => {
    const state = messagesStream.begin(request, context);
    expect(messagesStream.closed(state, 'ended early')).toEqual({ complete: false, events: named('error', { error: { type: 'api_error', message: 'ended early' } }) });
    messagesStream.classify(state, eventsOf(named('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }))[0]!);
    expect(messagesStream.closed(state, 'ended early')).toEqual({ complete: false, events: '' });
  });
});

describe('mergeStreamUsage', () => {
  it('takes the later report where it has a count, and the split from the start', () => {
    const start = { input_tokens: 10, cache_read_input_tokens: 0, cache_creation_input_tokens: 5, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 5 }, output_tokens: 1 };
    expect(mergeStreamUsage(start, { output_tokens: 40, input_tokens: null })).toEqual({
      inputTokens: 15,
      cachedTokens: 0,
      cacheWriteTokens: 5,
      cacheWrite1hTokens: 5,
      outputTokens: 40,
      reasoningTokens: 0,
    });
    expect(mergeStreamUsage(null, null)).toBeNull();
  });
});
