import { SSE_DONE, sseData } from '../sse.js';
import type { StreamFormat, StreamStep } from './dialect.js';
import { ChatAnswerAssembler } from './openai-chat-assembler.js';
import type { ChatRequest } from './openai-chat.js';
import { chatUsage } from './openai-usage.js';

export interface ChunkDelta {
  content?: unknown;
  reasoning_content?: unknown;
  reasoning?: unknown;
  refusal?: unknown;
  tool_calls?: Array<{ function?: { name?: unknown; arguments?: unknown } }> | null;
}

interface ChatChunk {
  id?: unknown;
  created?: unknown;
  model?: unknown;
  usage?: unknown;
  choices?: Array<{ index?: unknown; delta?: ChunkDelta | null }> | null;
}

/** The generated text of one stream chunk: content, reasoning, refusals and tool-call arguments. */
export function chunkOutputText(chunk: { choices?: Array<{ delta?: ChunkDelta | null }> | null }): string[] {
  const pieces: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string' && v !== '') pieces.push(v);
  };
  for (const choice of chunk.choices ?? []) {
    const delta = choice.delta;
    if (!delta) continue;
    add(delta.content);
    add(delta.reasoning_content);
    add(delta.reasoning);
    add(delta.refusal);
    for (const call of delta.tool_calls ?? []) {
      add(call.function?.name);
      add(call.function?.arguments);
    }
  }
  return pieces;
}

/** What a chat stream remembers while it runs. */
export interface ChatStreamState {
  /** The model asked upstream: a cut's chunks name it when the upstream's did not. */
  model: string;
  /** Whether the client gets the usage chunk (`stream_options.include_usage`, or an assembled answer). */
  clientWantsUsage: boolean;
  /** The last chunk's id, created and model, which a cut's chunks repeat. */
  last: ChatChunk;
  /** The choices seen, each of which a cut finishes. */
  choiceIndexes: Set<number>;
  /** The upstream's usage chunk, held back until the request is settled (null: none, or not for this client). */
  usageEvent: string | null;
}

const HOLD: StreamStep = { kind: 'hold' };
const PASS_AS_IS: StreamStep = { kind: 'pass', output: [] };

/**
 * Chat Completions streams: `data:` chunks, ended by the upstream closing the stream (its
 * `data: [DONE]` is held back: the proxy sends its own once the request is settled). The proxy
 * asked for usage (`stream_options.include_usage`); the chunk that carries it goes to a client that
 * asked for it too, after settling, and is taken out for one that did not.
 */
export const chatStream: StreamFormat<ChatRequest, ChatStreamState> = {
  begin: (request, { model, assemble }) => ({
    model,
    // An assembled answer carries usage, as a whole answer does.
    clientWantsUsage: assemble || request.stream_options?.include_usage === true,
    last: {},
    choiceIndexes: new Set(),
    usageEvent: null,
  }),

  classify(state, event) {
    // Comments and keep-alives are not passed on; `[DONE]` is sent by us once settled.
    if (event.data === null || event.data === '[DONE]') return HOLD;
    let json: ChatChunk;
    try {
      json = JSON.parse(event.data);
    } catch {
      return PASS_AS_IS;
    }
    state.last = json;
    const usage = chatUsage(json.usage);
    if (usage) {
      if ((json.choices ?? []).length === 0) {
        // The extra usage chunk: kept back until settled, and only for a client that asked.
        state.usageEvent = state.clientWantsUsage ? event.raw : null;
        return { kind: 'hold', usage };
      }
      if (!state.clientWantsUsage) {
        const { usage: _dropped, ...rest } = json;
        return { kind: 'rewrite', text: sseData(rest), usage };
      }
    }
    for (const choice of json.choices ?? []) if (typeof choice.index === 'number') state.choiceIndexes.add(choice.index);
    const output = chunkOutputText(json);
    return usage ? { kind: 'pass', output, usage } : { kind: 'pass', output };
  },

  closed: (state) => ({ complete: true, events: (state.usageEvent ?? '') + SSE_DONE }),

  // Every choice finishes with `length`; a client that asked for usage gets ours; then `[DONE]`.
  cutEvents(state, { charged }) {
    const { last } = state;
    const base = { id: last.id, object: 'chat.completion.chunk', created: last.created, model: last.model ?? state.model };
    let events = '';
    for (const index of state.choiceIndexes.size > 0 ? state.choiceIndexes : [0]) {
      events += sseData({ ...base, choices: [{ index, delta: {}, logprobs: null, finish_reason: 'length' }] });
    }
    if (state.clientWantsUsage && charged) {
      const { inputTokens, outputTokens } = charged;
      events += sseData({ ...base, choices: [], usage: { prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens } });
    }
    return events + SSE_DONE;
  },

  brokeOffEvents: (_state, message) => sseData({ error: { message, type: 'server_error', param: null, code: 'upstream_failed' } }),

  assembler: () => new ChatAnswerAssembler(),
};
