import { isRecord } from '../../util/is-record.js';
import type { Assembler } from '../assembled-answer.js';

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
