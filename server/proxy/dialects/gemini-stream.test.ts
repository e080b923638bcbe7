import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { geminiRequestSchema, type GeminiRequest } from './gemini.js';
import { geminiStream } from './gemini-stream.js';
import { classifyAll, eventsOf } from './stream-fixtures.test-util.js';

/**
 * Gemini streams recorded from server/testing/fake-gemini.ts (the proxy's stand-in for Google),
 * byte for byte, as the proxy asks for them (`streamGenerateContent?alt=sse`):
 * - gemini-content: three " hi" chunks, the last with `finishReason: STOP` and the output counted;
 * - gemini-thoughts: two thought chunks (`includeThoughts`) before two text chunks; the last counts
 *   the thoughts apart (`thoughtsTokenCount`);
 * - gemini-function-call: a text chunk, then a function call, whole, in the finishing chunk;
 * - gemini-max-tokens: stopped by the upstream at maxOutputTokens (`MAX_TOKENS`);
 * - gemini-running-usage: every chunk counts the output so far (as some 2.5 models do), with a
 *   cached prompt;
 * - gemini-stream-error: two chunks, then Google's bare JSON error object (no `data:`).
 */
type Fixture = 'gemini-content' | 'gemini-thoughts' | 'gemini-function-call' | 'gemini-max-tokens' | 'gemini-running-usage' | 'gemini-stream-error';

const fixtureText = (name: Fixture): string => readFileSync(new URL(`./fixtures/${name}.sse`, import.meta.url), 'utf8');

const request: GeminiRequest = geminiRequestSchema.parse({ model: 'gemini-2.5-flash', method: 'streamGenerateContent', alt: 'sse', contents: [{ role: 'user', parts: [{ text: 'Say hi' }] }] });
const context = { model: 'gemini-2.5-flash', assemble: false };
const chunk = (json: object) => `data: ${JSON.stringify(json)}\r\n\r\n`;

describe('Gemini stream events, classified (recorded from the fake upstream)', () => {
  it.each<[Fixture, string[], boolean]>([
    // A middle chunk reports the prompt alone (what a stream that ends early is charged); the
    // finishing chunk the answer's whole usage.
    ['gemini-content', ['pass " hi" usage 15/0', 'pass " hi" usage 15/0', 'pass " hi" usage 15/3'], true],
    ['gemini-thoughts', ['pass " hmm" usage 15/0', 'pass " hmm" usage 15/0', 'pass " hi" usage 15/0', 'pass " hi" usage 15/4'], true],
    ['gemini-function-call', ['pass "Checking." usage 15/0', 'pass "get_weather" "{\\"city\\":\\"Paris\\"}" usage 15/13'], true],
    ['gemini-max-tokens', ['pass " hi" usage 15/0', 'pass " hi" usage 15/2'], true],
    // The running counts of middle chunks are not an answer's usage: only their prompt is taken.
    ['gemini-running-usage', ['pass " hi" usage 1200/0', 'pass " hi" usage 1200/0', 'pass " hi" usage 1200/3'], true],
    // The error object is passed on as it came (the SDK throws it); the answer did not finish.
    ['gemini-stream-error', ['pass " hi" usage 15/0', 'pass " hi" usage 15/0', 'pass'], false],
  ])('%s: %j; complete when it closes: %s', (name, steps, complete) => {
    const { state, steps: actual } = classifyAll(geminiStream, request, fixtureText(name), context);
    expect(actual).toEqual(steps);
    // Google ends a stream by closing it: nothing is added to a finished one, nor to one the
    // upstream ended with its own error.
    expect(geminiStream.closed(state, 'unfinished')).toEqual({ complete, events: '' });
  });

  it('usage is read as the ledger takes it: the whole prompt with its cached part; thoughts in the output and as reasoning', () => {
    const [last] = eventsOf(fixtureText('gemini-thoughts')).slice(-1);
    const running = eventsOf(fixtureText('gemini-running-usage')).at(-1);
    const state = geminiStream.begin(request, context);
    expect(last && geminiStream.classify(state, last)).toMatchObject({ usage: { inputTokens: 15, cachedTokens: 0, outputTokens: 4, reasoningTokens: 2 } });
    expect(running && geminiStream.classify(state, running)).toMatchObject({ usage: { inputTokens: 1200, cachedTokens: 1000, outputTokens: 3, reasoningTokens: 0 } });
  });

  it.each<[string, string, string[]]>([
    ['a prompt blocked by safety ends the answer (usage: the prompt alone)', chunk({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 } }), ['pass usage 9/0']],
    ['an `error` event (as other Gemini gateways send one) goes to the client as it came', chunk({ error: { code: 500, message: 'internal', status: 'INTERNAL' } }), ['pass']],
    ['a chunk that is not JSON goes to the client as it came', 'data: {"candidates": oops\r\n\r\n', ['pass']],
    ['generated code is output', chunk({ candidates: [{ content: { parts: [{ executableCode: { language: 'PYTHON', code: 'print(1)' } }], role: 'model' }, index: 0 }] }), ['pass "print(1)"']],
    [
      'two candidates: each finishing chunk reports the answer so far',
      chunk({ candidates: [{ content: { parts: [{ text: 'a' }] }, index: 0 }, { content: { parts: [{ text: 'b' }] }, finishReason: 'STOP', index: 1 }], usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 2, totalTokenCount: 7 } }),
      ['pass "a" "b" usage 5/2'],
    ],
  ])('%s', (_what, text, steps) => {
    expect(classifyAll(geminiStream, request, text, context).steps).toEqual(steps);
  });

  it('an answer is complete only when every candidate the client saw has finished', () => {
    const first = chunk({ candidates: [{ content: { parts: [{ text: 'a' }] }, index: 0 }, { content: { parts: [{ text: 'b' }] }, finishReason: 'STOP', index: 1 }] });
    const { state } = classifyAll(geminiStream, request, first, context);
    expect(geminiStream.closed(state, 'unfinished').complete).toBe(false);
    const { state: blocked } = classifyAll(geminiStream, request, chunk({ promptFeedback: { blockReason: 'OTHER' } }), context);
    expect(geminiStream.closed(blocked, 'unfinished')).toEqual({ complete: true, events: '' });
  });
});

describe('how the proxy ends a Gemini stream itself', () => {
  /** The state after the first two chunks of gemini-content were relayed. */
  function midStream(assemble = false) {
    const state = geminiStream.begin(request, { model: 'gemini-2.5-flash', assemble });
    const events = eventsOf(fixtureText('gemini-content'));
    for (const event of events.slice(0, 2)) {
      geminiStream.classify(state, event);
      geminiStream.delivered?.(state);
    }
    const { responseId } = JSON.parse(events[0]?.data ?? '{}') as { responseId: string };
    return { state, responseId };
  }

  it('cut: one last chunk that finishes the candidate with MAX_TOKENS and reports the usage as charged', () => {
    const { state, responseId } = midStream();
    expect(geminiStream.cutEvents(state, { charged: { inputTokens: 12, outputTokens: 2 }, countedOutputTokens: 2, nowMs: 0 })).toBe(
      chunk({
        candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'MAX_TOKENS', index: 0 }],
        usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 2, totalTokenCount: 14 },
        modelVersion: 'gemini-2.5-flash',
        responseId,
      }),
    );
  });

  it('cut when settled already: the prompt the upstream reported and the output counted', () => {
    const { state } = midStream();
    const events = geminiStream.cutEvents(state, { charged: null, countedOutputTokens: 2, nowMs: 0 });
    expect(JSON.parse(eventsOf(events)[0]?.data ?? '{}')).toMatchObject({ usageMetadata: { promptTokenCount: 15, candidatesTokenCount: 2, totalTokenCount: 17 } });
  });

  it('cut: the chunk that did not fit was not delivered, so its finish does not count; candidates the client saw finish', () => {
    const { state } = midStream();
    const [, , last] = eventsOf(fixtureText('gemini-content'));
    if (last) geminiStream.classify(state, last); // classified, then cut in its place: not delivered
    const events = geminiStream.cutEvents(state, { charged: { inputTokens: 1, outputTokens: 2 }, countedOutputTokens: 2, nowMs: 0 });
    expect(JSON.parse(eventsOf(events)[0]?.data ?? '{}')).toMatchObject({ candidates: [{ finishReason: 'MAX_TOKENS', index: 0 }] });
  });

  it("an unfinished stream ends in Google's bare error object, as Google ends one it failed", () => {
    const { state } = midStream();
    const closed = geminiStream.closed(state, 'The upstream "google" ended the stream before the response was complete.');
    expect(closed.complete).toBe(false);
    expect(JSON.parse(closed.events)).toEqual({
      error: {
        code: 502,
        message: 'The upstream "google" ended the stream before the response was complete.',
        status: 'UNAVAILABLE',
        details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'UPSTREAM_UNFINISHED', domain: 'lobe-quota' }],
      },
    });
    expect(JSON.parse(geminiStream.brokeOffEvents(state, 'socket hang up'))).toMatchObject({ error: { code: 502, message: 'socket hang up', status: 'UNAVAILABLE' } });
  });

  it('an assembled answer gets errors as events, which its assembler reads', () => {
    const { state } = midStream(true);
    const broke = eventsOf(geminiStream.brokeOffEvents(state, 'socket hang up'));
    expect(JSON.parse(broke[0]?.data ?? '{}')).toMatchObject({ error: { message: 'socket hang up' } });
    const tail = eventsOf(fixtureText('gemini-stream-error')).at(-1);
    const step = tail && geminiStream.classify(state, tail);
    expect(step).toMatchObject({ kind: 'rewrite' });
    const assembler = geminiStream.assembler();
    if (step?.kind === 'rewrite') assembler.add(JSON.parse(eventsOf(step.text)[0]?.data ?? '{}') as Record<string, unknown>);
    expect(assembler.error).toMatchObject({ code: 503, status: 'UNAVAILABLE' });
  });
});

describe('the assembler', () => {
  it('merges a stream into the whole answer generateContent gives: text joined, thoughts apart, the last usage', () => {
    const assembler = geminiStream.assembler();
    for (const event of eventsOf(fixtureText('gemini-thoughts'))) assembler.add(JSON.parse(event.data ?? '{}') as Record<string, unknown>);
    expect(assembler.error).toBeNull();
    expect(assembler.answer()).toEqual({
      candidates: [{ content: { parts: [{ text: ' hmm hmm', thought: true }, { text: ' hi hi' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: 15, candidatesTokenCount: 2, totalTokenCount: 19, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 15 }], thoughtsTokenCount: 2 },
      modelVersion: 'gemini-2.5-flash',
      responseId: expect.any(String) as unknown,
    });
  });

  it('keeps a function call whole after the text', () => {
    const assembler = geminiStream.assembler();
    for (const event of eventsOf(fixtureText('gemini-function-call'))) assembler.add(JSON.parse(event.data ?? '{}') as Record<string, unknown>);
    expect((assembler.answer().candidates as Array<{ content: unknown }>)[0]?.content).toEqual({
      parts: [{ text: 'Checking.' }, { functionCall: { name: 'get_weather', args: { city: 'Paris' } } }],
      role: 'model',
    });
  });
});
