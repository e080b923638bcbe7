import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import type { StreamSink } from './response-sink.js';
import { SseSplitter } from './sse.js';

/**
 * With `proxy.streamWholeAnswers`, a client that asked for a whole answer is served from a stream:
 * the upstream streams, the one relay loop meters it as it does any stream (a lease instead of the
 * whole allowance, cut at the budget even when the upstream ignores max_tokens), and its events are
 * assembled here into the answer the client asked for. The relay writes its events to a sink; this
 * one keeps them instead of sending them, and the route sends the assembled answer once settled.
 */
export interface Assembler {
  /** One event's data, parsed (an object), in the order the relay wrote them. */
  add(json: Record<string, unknown>): void;
  /** The upstream's (or our) error event, when the stream ended in one. */
  readonly error: Record<string, unknown> | null;
  /** The whole answer, in the shape the API gives for a request that did not stream. */
  answer(): Record<string, unknown>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A sink that feeds every event written to it to an assembler, and sends nothing itself. */
export function assemblingSink(c: Context, assembler: Assembler): StreamSink {
  const splitter = new SseSplitter();
  const encoder = new TextEncoder();
  const listeners: Array<() => void> = [];
  let gone = false;
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  outgoing?.once('close', () => {
    if (outgoing.writableFinished) return;
    gone = true;
    for (const listener of listeners) listener();
  });
  const feed = (events: ReturnType<SseSplitter['push']>) => {
    for (const event of events) {
      if (event.data === null || event.data === '[DONE]') continue;
      try {
        const json: unknown = JSON.parse(event.data);
        if (isRecord(json)) assembler.add(json);
      } catch {
        // Not JSON: nothing a whole answer could carry.
      }
    }
  };
  return {
    start() {},
    async write(text) {
      feed(splitter.push(encoder.encode(text)));
    },
    end() {
      feed(splitter.end());
    },
    get gone() {
      return gone;
    },
    onGone(listener) {
      listeners.push(listener);
    },
    get response(): Response {
      throw new Error('assemblingSink: the route sends the assembled answer itself');
    },
  };
}

interface ToolCallState {
  id: unknown;
  type: unknown;
  name: string;
  arguments: string;
}

interface ChoiceState {
  index: number;
  role: unknown;
  content: string | null;
  refusal: string | null;
  reasoning: string | null;
  toolCalls: Map<number, ToolCallState>;
  annotations: unknown[];
  logprobs: { content: unknown[]; refusal: unknown[] } | null;
  finishReason: unknown;
}

const append = (to: string | null, piece: unknown): string | null => (typeof piece === 'string' ? (to ?? '') + piece : to);

/** Chat completions: the chunks of `chat.completion.chunk`s merged into one `chat.completion`. */
export class ChatAnswerAssembler implements Assembler {
  private readonly choices = new Map<number, ChoiceState>();
  private base: Record<string, unknown> = {};
  private usage: unknown = undefined;
  error: Record<string, unknown> | null = null;

  add(chunk: Record<string, unknown>): void {
    if (isRecord(chunk.error)) {
      this.error = chunk.error;
      return;
    }
    for (const field of ['id', 'created', 'model', 'service_tier', 'system_fingerprint']) if (chunk[field] !== undefined && chunk[field] !== null) this.base[field] = chunk[field];
    if (chunk.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage;
    if (!Array.isArray(chunk.choices)) return;
    for (const choice of chunk.choices as unknown[]) {
      if (!isRecord(choice) || typeof choice.index !== 'number') continue;
      const state = this.choice(choice.index);
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) state.finishReason = choice.finish_reason;
      if (isRecord(choice.logprobs)) {
        state.logprobs ??= { content: [], refusal: [] };
        if (Array.isArray(choice.logprobs.content)) state.logprobs.content.push(...(choice.logprobs.content as unknown[]));
        if (Array.isArray(choice.logprobs.refusal)) state.logprobs.refusal.push(...(choice.logprobs.refusal as unknown[]));
      }
      const delta = choice.delta;
      if (!isRecord(delta)) continue;
      if (typeof delta.role === 'string') state.role = delta.role;
      state.content = append(state.content, delta.content);
      state.refusal = append(state.refusal, delta.refusal);
      state.reasoning = append(state.reasoning, delta.reasoning_content);
      if (Array.isArray(delta.annotations)) state.annotations.push(...(delta.annotations as unknown[]));
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls as unknown[]) {
          if (!isRecord(call)) continue;
          const index = typeof call.index === 'number' ? call.index : state.toolCalls.size;
          const known = state.toolCalls.get(index) ?? { id: undefined, type: 'function', name: '', arguments: '' };
          if (call.id !== undefined) known.id = call.id;
          if (call.type !== undefined) known.type = call.type;
          if (isRecord(call.function)) {
            if (typeof call.function.name === 'string') known.name += call.function.name;
            if (typeof call.function.arguments === 'string') known.arguments += call.function.arguments;
          }
          state.toolCalls.set(index, known);
        }
      }
    }
  }

  private choice(index: number): ChoiceState {
    let state = this.choices.get(index);
    if (!state) {
      state = { index, role: 'assistant', content: null, refusal: null, reasoning: null, toolCalls: new Map(), annotations: [], logprobs: null, finishReason: null };
      this.choices.set(index, state);
    }
    return state;
  }

  answer(): Record<string, unknown> {
    const choices = [...this.choices.values()]
      .sort((a, b) => a.index - b.index)
      .map((s) => {
        const message: Record<string, unknown> = {
          role: s.role,
          // A reply that is only a tool call has no content, as OpenAI's whole answers say with null.
          content: s.content === '' && s.toolCalls.size > 0 ? null : (s.content ?? (s.toolCalls.size > 0 ? null : '')),
          refusal: s.refusal,
          annotations: s.annotations,
        };
        if (s.reasoning !== null) message.reasoning_content = s.reasoning;
        if (s.toolCalls.size > 0) {
          message.tool_calls = [...s.toolCalls.entries()]
            .sort(([a], [b]) => a - b)
            .map(([, call]) => ({ id: call.id, type: call.type, function: { name: call.name, arguments: call.arguments } }));
        }
        return { index: s.index, message, logprobs: s.logprobs, finish_reason: s.finishReason };
      });
    const { id, created, model, service_tier: tier, system_fingerprint: fingerprint } = this.base;
    return {
      id,
      object: 'chat.completion',
      created,
      model,
      choices,
      ...(this.usage === undefined ? {} : { usage: this.usage }),
      ...(tier === undefined ? {} : { service_tier: tier }),
      ...(fingerprint === undefined ? {} : { system_fingerprint: fingerprint }),
    };
  }
}

/** An output item of a Responses stream as it grows: text per content part, or a call's arguments. */
interface ItemState {
  item: Record<string, unknown>;
  texts: Map<number, string>;
  arguments: string;
  done: boolean;
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/**
 * The Responses API: its terminal event carries the whole response, which is the answer. A stream
 * cut at the budget ends in a `response.incomplete` of ours without output; its output is then
 * rebuilt from the items the stream carried (finished ones as they were, unfinished ones with the
 * text and arguments their deltas brought).
 */
export class ResponsesAnswerAssembler implements Assembler {
  private readonly items = new Map<number, ItemState>();
  private final: Record<string, unknown> | null = null;
  private latest: Record<string, unknown> = {};
  error: Record<string, unknown> | null = null;

  add(event: Record<string, unknown>): void {
    const type = event.type;
    if (type === 'error') {
      this.error = isRecord(event.error) ? event.error : { message: event.message, type: 'server_error', param: event.param ?? null, code: event.code ?? null };
      return;
    }
    if (isRecord(event.response)) {
      this.latest = event.response;
      if (typeof type === 'string' && TERMINAL.has(type)) this.final = event.response;
    }
    const at = typeof event.output_index === 'number' ? event.output_index : null;
    if (at === null) return;
    if (type === 'response.output_item.added' || type === 'response.output_item.done') {
      if (!isRecord(event.item)) return;
      const state = this.items.get(at) ?? { item: event.item, texts: new Map(), arguments: '', done: false };
      state.item = event.item;
      state.done = type === 'response.output_item.done';
      this.items.set(at, state);
      return;
    }
    const state = this.items.get(at);
    if (!state || typeof event.delta !== 'string') return;
    if (type === 'response.output_text.delta') {
      const part = typeof event.content_index === 'number' ? event.content_index : 0;
      state.texts.set(part, (state.texts.get(part) ?? '') + event.delta);
    } else if (type === 'response.function_call_arguments.delta') {
      state.arguments += event.delta;
    }
  }

  answer(): Record<string, unknown> {
    const response = this.final ?? this.latest;
    if (Array.isArray(response.output) && response.output.length > 0) return response;
    return { ...response, output: [...this.items.entries()].sort(([a], [b]) => a - b).map(([, state]) => this.itemOf(state)) };
  }

  private itemOf(state: ItemState): Record<string, unknown> {
    if (state.done) return state.item;
    const item: Record<string, unknown> = { ...state.item, status: 'incomplete' };
    if (item.type === 'function_call') return { ...item, arguments: state.arguments };
    if (item.type === 'message') {
      const content = [...state.texts.entries()].sort(([a], [b]) => a - b).map(([, text]) => ({ type: 'output_text', annotations: [], logprobs: [], text }));
      return { ...item, content };
    }
    return item;
  }
}
