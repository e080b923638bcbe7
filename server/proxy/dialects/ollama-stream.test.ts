import { readFileSync } from 'node:fs';
import { Ollama } from 'ollama';
import { describe, expect, it } from 'vitest';
import { NdjsonSplitter } from '../ndjson.js';
import type { SseEvent } from '../sse.js';
import { ollamaChat, ollamaGenerate } from './ollama-chat.js';
import { OllamaAnswerAssembler, ollamaStream, type OllamaApi } from './ollama-stream.js';
import { describeStep } from './stream-fixtures.test-util.js';

/**
 * Ollama streams recorded from server/testing/fake-ollama.ts (the proxy's stand-in for Ollama),
 * byte for byte:
 * - ollama-chat-content: three text lines, then the done line with the counts;
 * - ollama-chat-thinking-tool: two `message.thinking` lines, a text line, a whole tool call, done;
 * - ollama-chat-length: stopped by the upstream at `num_predict` 3 (`done_reason: "length"`);
 * - ollama-chat-error: two text lines, then `{"error": …}` and the end (no done line);
 * - ollama-generate-content: a `thinking` line and two `response` lines, then done with `context`.
 */
type Fixture = 'ollama-chat-content' | 'ollama-chat-thinking-tool' | 'ollama-chat-length' | 'ollama-chat-error' | 'ollama-generate-content';

const fixtureText = (name: Fixture): string => readFileSync(new URL(`./fixtures/${name}.ndjson`, import.meta.url), 'utf8');

function eventsOf(text: string): SseEvent[] {
  const splitter = new NdjsonSplitter();
  return [...splitter.push(Buffer.from(text)), ...splitter.end()];
}

function classifyAll(api: OllamaApi, text: string) {
  const format = ollamaStream(api);
  const state = format.begin({}, { model: 'llama3.2', assemble: false });
  const steps = eventsOf(text).map((event) => describeStep(format.classify(state, event)));
  return { format, state, steps };
}

describe('Ollama stream lines, classified (recorded from the fake upstream)', () => {
  it.each<[Fixture, OllamaApi, string[]]>([
    ['ollama-chat-content', 'chat', ['pass "Hello"', 'pass " world"', 'pass "!"', 'terminal usage 13/3']],
    ['ollama-chat-thinking-tool', 'chat', ['pass " hmm"', 'pass " hmm"', 'pass "Let me check."', 'pass "get_weather" "{\\"city\\":\\"Paris\\"}"', 'terminal usage 13/4']],
    ['ollama-chat-length', 'chat', ['pass " hi"', 'pass " hi"', 'pass " hi"', 'terminal usage 13/3']],
    ['ollama-chat-error', 'chat', ['pass " hi"', 'pass " hi"', 'pass']],
    ['ollama-generate-content', 'generate', ['pass " hmm"', 'pass "Rayleigh"', 'pass " scattering"', 'terminal usage 9/3']],
  ])('%s (%s): %j', (name, api, steps) => {
    expect(classifyAll(api, fixtureText(name)).steps).toEqual(steps);
  });

  it.each<[string, OllamaApi, string, string]>([
    ['a line that is not JSON goes to the client as it came', 'chat', '{"model": oops\n', 'pass'],
    ['a JSON value that is not an object too', 'chat', '[1,2]\n', 'pass'],
    ['a done line without counts (an Ollama-compatible server) settles on our count', 'chat', '{"model":"m","message":{"role":"assistant","content":""},"done":true}\n', 'terminal'],
    ['a done line with impossible counts too', 'chat', '{"done":true,"prompt_eval_count":-1,"eval_count":3}\n', 'terminal'],
    ['Ollama leaves out a count that is zero: no eval_count is no output', 'generate', '{"response":"","done":true,"prompt_eval_count":5}\n', 'terminal usage 5/0'],
    ['tool-call arguments sent as JSON text are counted as they are', 'chat', '{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{\\"a\\":1}"}}]},"done":false}\n', 'pass "f" "{\\"a\\":1}"'],
    ['a chat line without a message carries nothing', 'chat', '{"model":"m","done":false}\n', 'pass'],
  ])('%s', (_what, api, text, step) => {
    expect(classifyAll(api, text).steps).toEqual([step]);
  });

  it('remembers an upstream error line, so closing after it adds nothing; closing without one tells the client', () => {
    const failed = classifyAll('chat', fixtureText('ollama-chat-error'));
    expect(failed.format.closed(failed.state, 'unfinished')).toEqual({ complete: false, events: '' });
    const cutShort = classifyAll('chat', fixtureText('ollama-chat-content').split('\n').slice(0, 2).join('\n'));
    expect(cutShort.format.closed(cutShort.state, 'The upstream ended the stream early.')).toEqual({ complete: false, events: '{"error":"The upstream ended the stream early."}\n' });
  });

  it('takes the model from the lines', () => {
    expect(classifyAll('chat', fixtureText('ollama-chat-thinking-tool')).state.model).toBe('qwen3:8b');
  });
});

describe('how the proxy ends an Ollama stream itself', () => {
  const nowMs = Date.parse('2026-11-22T12:00:00Z');

  it('a cut ends with the done line Ollama writes at num_predict, with the counts charged', () => {
    const { format, state } = classifyAll('chat', fixtureText('ollama-chat-content').split('\n').slice(0, 2).join('\n'));
    expect(format.cutEvents(state, { charged: { inputTokens: 13, outputTokens: 2 }, countedOutputTokens: 2, nowMs })).toBe(
      '{"model":"llama3.2","created_at":"2026-11-22T12:00:00.000Z","message":{"role":"assistant","content":""},"done_reason":"length","done":true,"prompt_eval_count":13,"eval_count":2}\n',
    );
    const generate = classifyAll('generate', fixtureText('ollama-generate-content').split('\n').slice(0, 1).join('\n'));
    expect(generate.format.cutEvents(generate.state, { charged: null, countedOutputTokens: 1, nowMs })).toBe(
      '{"model":"qwen3:8b","created_at":"2026-11-22T12:00:00.000Z","response":"","done":true,"done_reason":"length","eval_count":1}\n',
    );
  });

  it('which ollama-js takes as the end of the stream: its iterator completes', async () => {
    const { format, state } = classifyAll('chat', '');
    const text = fixtureText('ollama-chat-content').split('\n').slice(0, 2).join('\n') + '\n' + format.cutEvents(state, { charged: { inputTokens: 13, outputTokens: 2 }, countedOutputTokens: 2, nowMs });
    const client = new Ollama({ fetch: async () => new Response(text, { headers: { 'content-type': 'application/x-ndjson' } }) });
    const parts = [];
    for await (const part of await client.chat({ model: 'llama3.2', messages: [], stream: true })) parts.push(part);
    expect(parts.map((p) => p.message.content)).toEqual(['Hello', ' world', '']);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'length', prompt_eval_count: 13, eval_count: 2 });
  });

  it('an upstream that breaks off is told as an error line, which ollama-js throws', async () => {
    const { format, state } = classifyAll('chat', '');
    const text = format.brokeOffEvents(state, 'The upstream "local" broke off the stream: socket hang up');
    expect(text).toBe('{"error":"The upstream \\"local\\" broke off the stream: socket hang up"}\n');
    const client = new Ollama({ fetch: async () => new Response(text) });
    const failure = await (async () => {
      for await (const _part of await client.chat({ model: 'llama3.2', messages: [], stream: true }));
    })().catch((e: unknown) => e);
    expect((failure as Error).message).toBe('The upstream "local" broke off the stream: socket hang up');
  });
});

describe('OllamaAnswerAssembler', () => {
  const assemble = (api: OllamaApi, text: string) => {
    const assembler = new OllamaAnswerAssembler(api);
    for (const event of eventsOf(text)) assembler.add(JSON.parse(event.data ?? 'null') as Record<string, unknown>);
    return assembler;
  };

  it('makes the whole chat answer Ollama gives without a stream: the done line, with the text, thinking and tool calls joined in', () => {
    const assembler = assemble('chat', fixtureText('ollama-chat-thinking-tool'));
    expect(assembler.error).toBeNull();
    const answer = assembler.answer();
    expect(Object.keys(answer).slice(0, 5)).toEqual(['model', 'created_at', 'message', 'done_reason', 'done']);
    expect(answer).toMatchObject({
      model: 'qwen3:8b',
      message: { role: 'assistant', content: 'Let me check.', thinking: ' hmm hmm', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      done: true,
      done_reason: 'stop',
      prompt_eval_count: 13,
      eval_count: 4,
    });
  });

  it('and the whole generate answer, its context kept', () => {
    expect(assemble('generate', fixtureText('ollama-generate-content')).answer()).toMatchObject({ response: 'Rayleigh scattering', thinking: ' hmm', done: true, context: [100, 101, 102, 103, 104, 105, 106, 107], eval_count: 3 });
  });

  it('keeps the error a stream ended in', () => {
    expect(assemble('chat', fixtureText('ollama-chat-error')).error).toEqual({ message: 'llama runner process has terminated: exit status 2' });
  });
});

describe('the upstream body', () => {
  const forward = { model: 'llama3.2', outputLimit: 100, wantOutput: 16_384, assemble: false };

  it('always sets num_predict to the output admitted (Ollama’s own default is no limit), keeping the other options', () => {
    const request = ollamaChat.requestSchema.parse({ model: 'llama3.2', messages: [], options: { temperature: 0.2 } });
    expect(ollamaChat.upstreamBody(request, forward)).toEqual({ model: 'llama3.2', messages: [], options: { temperature: 0.2, num_predict: 100 } });
    const limited = ollamaGenerate.requestSchema.parse({ model: 'llama3.2', prompt: 'hi', stream: false, options: { num_predict: 40 } });
    expect(ollamaGenerate.upstreamBody(limited, { ...forward, outputLimit: 40, wantOutput: 40 })).toEqual({ model: 'llama3.2', prompt: 'hi', stream: false, options: { num_predict: 40 } });
  });

  it('asks for a stream to assemble a whole answer from', () => {
    const request = ollamaChat.requestSchema.parse({ model: 'llama3.2', messages: [], stream: false });
    expect(ollamaChat.upstreamBody(request, { ...forward, assemble: true })).toMatchObject({ stream: true });
  });

  it('streams unless the body says "stream": false, and wants num_predict (-1 and -2 mean no limit: the model’s cap)', () => {
    const facts = (body: object) => ollamaChat.admissionFacts(ollamaChat.requestSchema.parse({ model: 'llama3.2', ...body }), () => 16_384);
    expect(facts({}).streaming).toBe(true);
    expect(facts({ stream: null }).streaming).toBe(true);
    expect(facts({ stream: false }).streaming).toBe(false);
    expect(facts({ options: { num_predict: 64 } }).wantOutput).toBe(64);
    expect(facts({ options: { num_predict: -1 } }).wantOutput).toBe(16_384);
    expect(facts({ options: { num_predict: -2 } }).wantOutput).toBe(16_384);
    // 0 is no limit to Ollama: a whole answer asking for it holds the cap, never nothing.
    expect(facts({ stream: false, options: { num_predict: 0 } }).wantOutput).toBe(16_384);
  });
});
