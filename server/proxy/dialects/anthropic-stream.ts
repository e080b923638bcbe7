import { isRecord } from '../../util/is-record.js';
import { namedEventJson, sseNamed } from '../sse.js';
import { AnthropicAnswerAssembler } from './anthropic-assembler.js';
import type { MessagesRequest } from './anthropic-messages.js';
import { mergeStreamUsage } from './anthropic-usage.js';
import type { StreamFormat, StreamStep } from './dialect.js';

/** What an Anthropic Messages stream remembers while it runs. */
export interface MessagesStreamState {
  /** The model asked upstream: a cut's events name it when the upstream's did not. */
  model: string;
  /** `message_start`'s usage (the prompt's classes), and the latest `message_delta`'s. */
  startUsage: Record<string, unknown> | null;
  deltaUsage: Record<string, unknown> | null;
  /** Content blocks started and not yet stopped: a cut stops them. */
  openBlocks: Set<number>;
  /** The upstream sent an `error` event: its stream ends unfinished, and the client already knows why. */
  upstreamReportedError: boolean;
}

const PASS_AS_IS: StreamStep = { kind: 'pass', output: [] };

/** The generated text a `content_block_delta` carries: text, thinking, a tool's input JSON, a citation's text. */
export function deltaOutput(delta: unknown): string | null {
  if (!isRecord(delta)) return null;
  const text = delta.type === 'text_delta' ? delta.text : delta.type === 'thinking_delta' ? delta.thinking : delta.type === 'input_json_delta' ? delta.partial_json : null;
  // A signature (thinking's) or a citation is not generated text: Anthropic bills the thinking itself.
  return typeof text === 'string' && text !== '' ? text : null;
}

const errorEvent = (message: string) => sseNamed('error', { type: 'error', error: { type: 'api_error', message } });

/**
 * Anthropic Messages streams: named events, passed on unchanged. `message_start` reports the
 * prompt's usage, every `content_block_delta`'s text, thinking or tool input is counted as it goes,
 * `message_delta` reports the cumulative output, and `message_stop` ends the stream: the request is
 * settled on the two reports before it is sent. A stream that closes without it is unfinished.
 */
export const messagesStream: StreamFormat<MessagesRequest, MessagesStreamState> = {
  begin: (_request, { model }) => ({ model, startUsage: null, deltaUsage: null, openBlocks: new Set(), upstreamReportedError: false }),

  classify(state, event) {
    const named = namedEventJson(event);
    if (named === null) return PASS_AS_IS; // a comment, a keep-alive, or data that is not JSON
    const { json, type } = named;
    switch (type) {
      case 'content_block_delta': {
        const output = deltaOutput(json.delta);
        return output === null ? PASS_AS_IS : { kind: 'pass', output: [output] };
      }
      case 'message_start': {
        const message = isRecord(json.message) ? json.message : {};
        if (typeof message.model === 'string') state.model = message.model;
        state.startUsage = isRecord(message.usage) ? message.usage : null;
        const usage = mergeStreamUsage(state.startUsage, null);
        return usage ? { kind: 'pass', output: [], usage } : PASS_AS_IS;
      }
      case 'content_block_start':
        if (typeof json.index === 'number') state.openBlocks.add(json.index);
        return PASS_AS_IS;
      case 'content_block_stop':
        if (typeof json.index === 'number') state.openBlocks.delete(json.index);
        return PASS_AS_IS;
      case 'message_delta': {
        if (isRecord(json.usage)) state.deltaUsage = json.usage;
        const usage = mergeStreamUsage(state.startUsage, state.deltaUsage);
        return usage ? { kind: 'pass', output: [], usage } : PASS_AS_IS;
      }
      case 'message_stop':
        return { kind: 'terminal', usage: mergeStreamUsage(state.startUsage, state.deltaUsage) };
      case 'error':
        state.upstreamReportedError = true;
        return PASS_AS_IS;
      default:
        return PASS_AS_IS; // ping, and event types to come
    }
  },

  closed: (state, message) => ({ complete: false, events: state.upstreamReportedError ? '' : errorEvent(message) }),

  // As Anthropic ends an answer at max_tokens: the open blocks stop, the stop reason and usage as
  // charged, then message_stop.
  cutEvents(state, { charged, countedOutputTokens }) {
    let events = '';
    for (const index of [...state.openBlocks].sort((a, b) => a - b)) events += sseNamed('content_block_stop', { type: 'content_block_stop', index });
    state.openBlocks.clear();
    const start = state.startUsage ?? {};
    const usage = {
      input_tokens: typeof start.input_tokens === 'number' ? start.input_tokens : (charged?.inputTokens ?? 0),
      cache_creation_input_tokens: typeof start.cache_creation_input_tokens === 'number' ? start.cache_creation_input_tokens : 0,
      cache_read_input_tokens: typeof start.cache_read_input_tokens === 'number' ? start.cache_read_input_tokens : 0,
      output_tokens: charged?.outputTokens ?? countedOutputTokens,
    };
    events += sseNamed('message_delta', { type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage });
    return events + sseNamed('message_stop', { type: 'message_stop' });
  },

  brokeOffEvents: (_state, message) => errorEvent(message),

  assembler: () => new AnthropicAnswerAssembler(),
};
