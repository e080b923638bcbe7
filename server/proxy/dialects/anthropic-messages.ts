import { z } from 'zod';
import { bearerToken } from '../../auth/secrets.js';
import { isRecord } from '../../util/is-record.js';
import type { ErrorBody } from '../error-shape.js';
import type { OpenAIError } from '../openai-error.js';
import type { Refusal } from '../refusals.js';
import { modelIdSchema } from '../request-body.js';
import { sseNamed } from '../sse.js';
import { messagesStream, type MessagesStreamState } from './anthropic-stream.js';
import { anthropicUsage } from './anthropic-usage.js';
import type { AnswerText, ClientKey, Dialect, PromptCacheWrite } from './dialect.js';

/** What the proxy reads of a Messages request; everything else passes through untouched. */
export const messagesRequestSchema = z.looseObject({
  model: modelIdSchema,
  messages: z.array(z.looseObject({ role: z.string() })).min(1),
  // Required by Anthropic: the most output the request may produce, the proxy's allowance for it.
  max_tokens: z.number().int().min(1),
  stream: z.boolean().nullable().optional(),
  // The end user, as LobeChat fills it: a service key may name the payer with it.
  metadata: z.looseObject({ user_id: z.string().nullable().optional() }).nullable().optional(),
  thinking: z.looseObject({ type: z.string(), budget_tokens: z.number().int().min(0).optional() }).nullable().optional(),
});

export type MessagesRequest = z.infer<typeof messagesRequestSchema>;

/** `POST /v1/messages/count_tokens`: the model picks the upstream; the rest passes through. */
export const countTokensRequestSchema = z.looseObject({ model: modelIdSchema, messages: z.array(z.unknown()) });

/**
 * The least `budget_tokens` Anthropic accepts for extended thinking, which must also stay below
 * `max_tokens`: a request that thinks needs room for at least one more token than this.
 */
export const MIN_THINKING_BUDGET = 1_024;

/**
 * Whether the request marks part of its prompt for caching (`cache_control` on the request, the
 * system prompt, a message's blocks or a tool), and for how long at most: those tokens are billed
 * as cache writes, above the input price. LobeChat marks its system prompt and last messages on
 * every request.
 */
export function promptCacheWriteOf(request: MessagesRequest): PromptCacheWrite | undefined {
  let longest: PromptCacheWrite | undefined;
  const see = (block: unknown) => {
    if (!isRecord(block) || !isRecord(block.cache_control)) return;
    longest = block.cache_control.ttl === '1h' || longest === '1h' ? '1h' : '5m';
  };
  see(request);
  const blocks = (value: unknown) => (Array.isArray(value) ? value : []);
  for (const block of blocks(request.system)) see(block);
  for (const message of request.messages) for (const block of blocks(message.content)) see(block);
  for (const tool of blocks(request.tools)) see(tool);
  return longest;
}

const thinks = (request: MessagesRequest): boolean => request.thinking?.type === 'enabled' && typeof request.thinking.budget_tokens === 'number';

/**
 * The body sent upstream, with `max_tokens` clamped to the budget's room; a thinking budget that no
 * longer fits under it shrinks with it (Anthropic refuses `budget_tokens >= max_tokens`). Written
 * from what was parsed, like every dialect's.
 */
export function upstreamMessagesBody(request: MessagesRequest, model: string, outputLimit: number, stream: boolean): Record<string, unknown> {
  const maxTokens = Math.max(1, Math.min(request.max_tokens, outputLimit));
  const body: Record<string, unknown> = { ...request, model, max_tokens: maxTokens };
  if (stream) body.stream = true;
  const budget = request.thinking?.budget_tokens;
  if (thinks(request) && typeof budget === 'number' && budget >= maxTokens) body.thinking = { ...request.thinking, budget_tokens: Math.max(MIN_THINKING_BUDGET, maxTokens - 1) };
  return body;
}

/** Anthropic's error type for each status the proxy answers with. */
function errorType(status: number): string {
  switch (status) {
    case 400:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
      return 'overloaded_error';
    default:
      return 'api_error';
  }
}

/** `{"type": "error", "error": {"type", "message"}}`, as Anthropic writes every error. */
export const anthropicErrorBody: ErrorBody = (error: OpenAIError) => ({ type: 'error', error: { type: errorType(error.status), message: error.message } });

/**
 * A refusal as Anthropic's 429 `rate_limit_error` (the type its SDK and LobeChat know); a spent
 * budget's `x-should-retry: false` keeps the SDK from retrying it.
 */
export const anthropicRefusalBody = (refusal: Refusal): object => ({ type: 'error', error: { type: 'rate_limit_error', message: refusal.message } });

/** `x-api-key: lq-…`, as the Anthropic SDK sends a key, or `Authorization: Bearer lq-…`. */
export const ANTHROPIC_CLIENT_KEY: ClientKey = {
  read: (request) => request.header('x-api-key')?.trim() || bearerToken(request.header('authorization')),
  hint: 'x-api-key: lq-…',
};

/** The answer's content blocks' generated text, counted for an answer without usage. */
function contentText(content: unknown): string[] {
  const pieces: string[] = [];
  for (const block of Array.isArray(content) ? content : []) {
    if (!isRecord(block)) continue;
    for (const value of [block.text, block.thinking]) if (typeof value === 'string' && value !== '') pieces.push(value);
    if (block.type === 'tool_use' && block.input !== undefined) pieces.push(JSON.stringify(block.input));
  }
  return pieces;
}

const NO_USAGE = { input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 };

/** A refusal answered as the assistant's message, as a request without `stream` gets it. */
export function messageAnswer({ id, text, model }: AnswerText) {
  return { id: `msg_${id}`, type: 'message', role: 'assistant', model, content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage: NO_USAGE };
}

/** The same answer as the events of a Messages stream. */
export function messageAnswerEvents(answer: AnswerText): string {
  const { content: _content, usage: _usage, ...message } = messageAnswer(answer);
  return [
    sseNamed('message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: NO_USAGE } }),
    sseNamed('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    sseNamed('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: answer.text } }),
    sseNamed('content_block_stop', { type: 'content_block_stop', index: 0 }),
    sseNamed('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 0 } }),
    sseNamed('message_stop', { type: 'message_stop' }),
  ].join('');
}

/** `POST /v1/messages`: Anthropic's Messages API. */
export const anthropicMessages: Dialect<MessagesRequest, MessagesStreamState> = {
  name: 'messages',
  api: 'anthropic',
  clientKey: ANTHROPIC_CLIENT_KEY,
  requestSchema: messagesRequestSchema,
  admissionFacts: (request) => ({
    model: request.model,
    bodyUser: request.metadata?.user_id ?? undefined,
    // LobeChat asks for 64,000: the clamp to the budget's room is what lets such a request start.
    wantOutput: request.max_tokens,
    streaming: request.stream === true,
    ...(thinks(request) ? { minOutput: Math.min(request.max_tokens, MIN_THINKING_BUDGET + 1) } : {}),
    promptCacheWrite: promptCacheWriteOf(request),
    downgradable: true,
    prompt: { kind: 'anthropic', body: request },
  }),
  upstreamPath: '/v1/messages',
  upstreamBody: (request, { model, outputLimit, assemble }) => upstreamMessagesBody(request, model, outputLimit, assemble),
  // The API's version and beta flags are the client's to choose; the upstream needs them as sent.
  forwardedHeaders: ['anthropic-version', 'anthropic-beta'],
  answerHeaderPrefixes: ['anthropic-ratelimit-', 'request-id'],
  usageField: 'usage',
  usageOf: anthropicUsage,
  answerOutputText: (answer) => contentText((answer as { content?: unknown }).content),
  stream: messagesStream,
  errorBody: anthropicErrorBody,
  refusalBody: anthropicRefusalBody,
  refusalAnswer: { whole: messageAnswer, events: messageAnswerEvents },
};
