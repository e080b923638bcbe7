import { isRecord } from '../../util/is-record.js';
import type { Assembler } from '../assembled-answer.js';

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
