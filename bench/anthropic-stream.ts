// The Anthropic side of `npm run bench:proxy`: the Messages request a client sends, the stream the
// bench's fake upstream answers it with (Anthropic's framing, byte for byte as
// server/proxy/dialects/fixtures/anthropic-text.sse records it), and the checks of what came back.
// Pure text in and out: the fake's HTTP lives with the OpenAI fake in proxy.bench.ts.

export const ANTHROPIC_MODEL = 'claude-sonnet-4-5';
export const MESSAGES_PATH = '/v1/messages';
/** The version the Anthropic SDK sends (and LobeChat with it); lobe-quota passes it upstream. */
export const ANTHROPIC_VERSION = '2023-06-01';
/** What LobeChat asks Claude for: lobe-quota clamps it to the budget's room on every request. */
const MAX_TOKENS = 64_000;

/** Every stream ends with this event, the same bytes whoever sends them. */
export const MESSAGE_STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n';

/** A streamed Messages request: Anthropic takes the system prompt beside the messages. */
export function messagesRequestBody(system: string, messages: { role: string; content: string }[]): string {
  return JSON.stringify({ model: ANTHROPIC_MODEL, system, messages, max_tokens: MAX_TOKENS, stream: true, temperature: 0.7 });
}

/** Anthropic's 400 body. */
export const invalidRequestBody = (message: string) => ({ type: 'error', error: { type: 'invalid_request_error', message } });

export interface MessagesAnswer {
  id: string;
  model: unknown;
  /** One text delta each. */
  pieces: readonly string[];
  stopReason: 'end_turn' | 'max_tokens';
  inputTokens: number;
}

const event = (type: string, payload: Record<string, unknown> = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;

/**
 * One text answer as Anthropic streams it: `message_start` (the prompt's usage with its cache
 * classes, output 1), the text block's start, a `ping`, one `text_delta` per piece, the block's
 * stop, `message_delta` (stop reason, cumulative output), `message_stop`. A generator, so each
 * event is written when the fake sends it, as the OpenAI fake writes its chunks.
 */
export function* messagesStreamEvents(a: MessagesAnswer): Generator<string, void, undefined> {
  const input = { input_tokens: a.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const message = { id: a.id, type: 'message', role: 'assistant', model: a.model, content: [], stop_reason: null, stop_sequence: null };
  const cacheCreation = { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 };
  yield event('message_start', { message: { ...message, usage: { ...input, cache_creation: cacheCreation, output_tokens: 1, service_tier: 'standard' } } });
  yield event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  yield event('ping');
  for (const text of a.pieces) yield event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
  yield event('content_block_stop', { index: 0 });
  yield event('message_delta', { delta: { stop_reason: a.stopReason, stop_sequence: null }, usage: { ...input, output_tokens: a.pieces.length } });
  yield event('message_stop');
}

interface StreamEvent {
  type: string;
  message?: { usage?: { input_tokens?: unknown } };
  delta?: { type?: string; text?: string; stop_reason?: string };
  usage?: { output_tokens?: unknown };
}

/**
 * The thorough check of one whole stream: every event named as its data's type, the events in
 * Anthropic's order with one text delta per piece, the exact text, the prompt's usage reported and
 * the whole output at the end, closed by `message_stop`. What is wrong, or null.
 */
export function messagesStreamProblem(text: string, expectedText: string, pieces: number): string | null {
  if (!text.endsWith(MESSAGE_STOP)) return 'does not end with message_stop';
  const events: StreamEvent[] = [];
  for (const block of text.slice(0, -2).split('\n\n')) {
    const [name, data, ...rest] = block.split('\n');
    if (!name?.startsWith('event: ') || !data?.startsWith('data: ') || rest.length > 0) return `an event is not one event line and one data line: ${block.slice(0, 200)}`;
    const json = JSON.parse(data.slice('data: '.length)) as StreamEvent;
    if (json.type !== name.slice('event: '.length)) return `event ${name} carries type ${String(json.type)}`;
    events.push(json);
  }
  const order = ['message_start', 'content_block_start', 'ping', ...Array<string>(pieces).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop'];
  if (events.map((e) => e.type).join() !== order.join()) return `${events.length} events, not Anthropic's ${order.length} in order`;
  const content = events.map((e) => (e.type === 'content_block_delta' && e.delta?.type === 'text_delta' ? e.delta.text : '')).join('');
  if (content !== expectedText) return 'text differs';
  const inputTokens = events[0]?.message?.usage?.input_tokens;
  if (typeof inputTokens !== 'number' || inputTokens < 1) return 'message_start reports no input tokens';
  const final = events.at(-2);
  if (final?.usage?.output_tokens !== pieces) return `message_delta reports ${String(final?.usage?.output_tokens)} output tokens, not ${pieces}`;
  if (final.delta?.stop_reason !== 'end_turn') return `stop_reason ${String(final.delta?.stop_reason)}`;
  return null;
}
