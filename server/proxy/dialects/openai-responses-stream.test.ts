import { describe, expect, it } from 'vitest';
import { parseEvent } from '../sse.js';
import { responsesStream } from './openai-responses-stream.js';
import { responsesRequestSchema, type ResponsesRequest } from './openai-responses.js';
import { classifyAll, eventsOf, fixtureText, type Fixture } from './stream-fixtures.test-util.js';

const request: ResponsesRequest = responsesRequestSchema.parse({ model: 'gpt-4o-mini', input: 'hi', stream: true });

/** An event as the Responses API frames one, for what the fake does not send. */
const named = (type: string, fields: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;

/** The event's data, parsed (what the SDKs read). */
const dataOf = (text: string): Record<string, unknown> => JSON.parse(parseEvent(text).data ?? 'null') as Record<string, unknown>;

describe('Responses stream events, classified (recorded from the fake upstream)', () => {
  it.each<[Fixture, string[]]>([
    ['responses-content', ['pass', 'pass', 'pass', 'pass', 'pass " hi"', 'pass " hi"', 'pass " hi"', 'pass', 'pass', 'pass', 'terminal usage 1/3']],
    ['responses-tool-call', ['pass', 'pass', 'pass', 'pass "{\\"city\\""', 'pass ":\\"Paris\\"}"', 'pass', 'pass', 'terminal usage 1/2']],
    ['responses-incomplete', ['pass', 'pass', 'pass', 'pass', 'pass " hi"', 'pass " hi"', 'pass', 'pass', 'pass', 'terminal usage 1/2']],
  ])('%s: %j', (name, steps) => {
    const { state, steps: actual } = classifyAll(responsesStream, request, fixtureText(name));
    expect(actual).toEqual(steps);
    // Numbered after the last event delivered; the terminal one is the upstream's last word.
    expect(state.lastSequence).toBe(steps.length - 2);
    expect(state.lastResponse).toMatchObject({ object: 'response', model: 'gpt-4o-mini' });
  });

  it.each<[string, string, string]>([
    ['a keep-alive comment is passed on', ': keep-alive\n\n', 'pass'],
    ['reasoning summary text is output', named('response.reasoning_summary_text.delta', { sequence_number: 4, delta: 'Thinking' }), 'pass "Thinking"'],
    ['a refusal is output', named('response.refusal.delta', { sequence_number: 4, delta: 'I can’t' }), 'pass "I can’t"'],
    ['an event without a type is known by its event name', 'event: response.output_text.delta\ndata: {"sequence_number":4,"delta":" hi"}\n\n', 'pass " hi"'],
    ['an empty delta is nothing to count', named('response.output_text.delta', { sequence_number: 4, delta: '' }), 'pass'],
    ['an event that is not JSON goes to the client as it came', 'event: response.output_text.delta\ndata: {oops\n\n', 'pass'],
    ['response.failed is terminal, with the usage it carries', named('response.failed', { sequence_number: 4, response: { status: 'failed', usage: { input_tokens: 5, output_tokens: 0 } } }), 'terminal usage 5/0'],
    ['a terminal event without usage settles on our count', named('response.completed', { sequence_number: 4, response: { status: 'completed' } }), 'terminal'],
  ])('%s', (_what, text, step) => {
    expect(classifyAll(responsesStream, request, text).steps).toEqual([step]);
  });
});

describe('how the proxy ends a Responses stream itself', () => {
  /** The state after responses-content's first five events were delivered (sequence 0-4), and the sixth classified but cut. */
  function cutAtSixth() {
    const state = responsesStream.begin(request, { model: 'gpt-4o-mini', assemble: false });
    const events = eventsOf(fixtureText('responses-content'));
    for (const event of events.slice(0, 5)) {
      responsesStream.classify(state, event);
      responsesStream.delivered?.(state);
    }
    const sixth = events[5];
    if (sixth) expect(responsesStream.classify(state, sixth)).toEqual({ kind: 'pass', output: [' hi'] });
    const inProgress = dataOf(events[1]?.raw ?? '').response as Record<string, unknown>;
    return { state, inProgress };
  }

  it('cut: a response.incomplete of its own, numbered after the last event delivered, with the usage as charged', () => {
    const { state, inProgress } = cutAtSixth();
    const events = responsesStream.cutEvents(state, { charged: { inputTokens: 1, outputTokens: 1 }, countedOutputTokens: 1, nowMs: 0 });
    expect(events.startsWith('event: response.incomplete\n')).toBe(true);
    expect(dataOf(events)).toEqual({
      type: 'response.incomplete',
      sequence_number: 5,
      response: {
        ...inProgress,
        status: 'incomplete',
        incomplete_details: { reason: 'max_output_tokens' },
        output: [],
        usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } },
      },
    });
  });

  it('cut of a request settled already: the output counted, no input', () => {
    const { state } = cutAtSixth();
    const events = responsesStream.cutEvents(state, { charged: null, countedOutputTokens: 7, nowMs: 0 });
    expect(dataOf(events).response).toMatchObject({ usage: { input_tokens: 0, output_tokens: 7, total_tokens: 7 } });
  });

  it('cut before any event: a response of its own making, numbered 0', () => {
    const state = responsesStream.begin(request, { model: 'gpt-4o-mini-2024-07-18', assemble: false });
    const events = responsesStream.cutEvents(state, { charged: { inputTokens: 3, outputTokens: 0 }, countedOutputTokens: 0, nowMs: 1_700_000_000_999 });
    expect(dataOf(events)).toMatchObject({ sequence_number: 0, response: { id: null, object: 'response', created_at: 1_700_000_000, model: 'gpt-4o-mini-2024-07-18', status: 'incomplete' } });
  });

  it('upstream broke off: an error event, numbered next, with OpenAI’s error object the SDKs raise', () => {
    const { state } = cutAtSixth();
    const message = 'The upstream "fake" broke off the stream: other side closed';
    const events = responsesStream.brokeOffEvents(state, message);
    expect(events.startsWith('event: error\n')).toBe(true);
    expect(dataOf(events)).toEqual({ type: 'error', sequence_number: 5, code: 'upstream_failed', message, param: null, error: { message, type: 'server_error', param: null, code: 'upstream_failed' } });
  });

  it('closed without a terminal event: unfinished, and the client hears so', () => {
    const { state } = classifyAll(responsesStream, request, eventsOf(fixtureText('responses-content')).slice(0, 7).map((e) => e.raw).join(''));
    const closed = responsesStream.closed(state, 'The upstream "fake" ended the stream before the response was complete.');
    expect(closed.complete).toBe(false);
    expect(dataOf(closed.events)).toMatchObject({ type: 'error', sequence_number: 7, code: 'upstream_failed', message: 'The upstream "fake" ended the stream before the response was complete.' });
  });

  it('closed after the upstream’s own error event: unfinished, and nothing to add', () => {
    const text = fixtureText('responses-content').split('event: response.output_text.delta')[0] + named('error', { sequence_number: 4, code: 'server_error', message: 'The model is overloaded.', param: null });
    const { state, steps } = classifyAll(responsesStream, request, text);
    expect(steps).toEqual(['pass', 'pass', 'pass', 'pass', 'pass']);
    expect(responsesStream.closed(state, 'unfinished')).toEqual({ complete: false, events: '' });
  });
});
