import { z } from 'zod';
import { modelIdSchema } from '../request-body.js';
import { SSE_DONE, sseData } from '../sse.js';
import type { AnswerText, Dialect } from './dialect.js';
import { quickChatRequest } from './openai-chat-check.js';
import { chunkOutputText, chatStream, type ChatStreamState, type ChunkDelta } from './openai-chat-stream.js';
import { OPENAI_ERRORS } from './openai-common.js';
import { chatUsage } from './openai-usage.js';

const maxTokensField = z.number().int().min(1).nullable().optional();

/** What the proxy reads of a chat request; everything else passes through untouched. */
export const chatRequestSchema = z.looseObject({
  model: modelIdSchema,
  messages: z.array(z.looseObject({ role: z.string() })).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: maxTokensField,
  max_completion_tokens: maxTokensField,
  n: z.number().int().min(1).max(128).nullable().optional(),
  user: z.string().optional(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Models that take `max_completion_tokens` and reject `max_tokens` (OpenAI's reasoning families). */
const COMPLETION_TOKENS_ONLY = /^(o\d|gpt-5|gpt-4\.1|gpt-4o|chatgpt-)/;

/**
 * The body sent upstream: the client's, with its output limit clamped to the budget and, for a
 * stream, usage requested so the proxy can settle on the upstream's own numbers. Always written
 * from what was parsed, never the client's own text: a key given twice (`"stream"`, `"model"`)
 * must reach the upstream as the value that was admitted and priced, whichever of the two its
 * JSON parser would have kept.
 */
export function upstreamChatBody(request: ChatRequest, outputLimit: number, wantOutput: number): Record<string, unknown> {
  const body: Record<string, unknown> = { ...request };
  const perChoice = Math.max(1, Math.floor(outputLimit / (request.n ?? 1)));
  if (typeof request.max_completion_tokens === 'number') body.max_completion_tokens = Math.min(request.max_completion_tokens, perChoice);
  else if (typeof request.max_tokens === 'number') body.max_tokens = Math.min(request.max_tokens, perChoice);
  else if (outputLimit < wantOutput) body[COMPLETION_TOKENS_ONLY.test(request.model) ? 'max_completion_tokens' : 'max_tokens'] = perChoice;
  if (request.stream) body.stream_options = { ...request.stream_options, include_usage: true };
  return body;
}

const NO_CHAT_USAGE = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

/** A whole Chat Completions answer, as OpenAI sends one. */
export function chatCompletion({ id, text, model, createdSeconds }: AnswerText) {
  return {
    id: `chatcmpl-${id}`,
    object: 'chat.completion',
    created: createdSeconds,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: NO_CHAT_USAGE,
  };
}

/** The same answer as a Chat Completions stream: role, text, finish, usage (when asked), `[DONE]`. */
export function chatCompletionEvents({ id, text, model, createdSeconds }: AnswerText, includeUsage: boolean): string {
  const chunk = (choices: unknown[], extra: object = {}) => sseData({ id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created: createdSeconds, model, choices, ...extra });
  const events = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]),
  ];
  if (includeUsage) events.push(chunk([], { usage: NO_CHAT_USAGE }));
  events.push(SSE_DONE);
  return events.join('');
}

/** `POST /v1/chat/completions`. */
export const openAIChat: Dialect<ChatRequest, ChatStreamState> = {
  name: 'chat',
  api: 'openai',
  requestSchema: chatRequestSchema,
  quickParse: quickChatRequest,
  admissionFacts: (request, outputCapOf) => ({
    model: request.model,
    bodyUser: request.user,
    // Every choice may produce the whole limit.
    wantOutput: (request.max_completion_tokens ?? request.max_tokens ?? outputCapOf(request.model)) * (request.n ?? 1),
    streaming: request.stream === true,
    downgradable: true,
    prompt: { kind: 'chat', body: request },
  }),
  upstreamPath: '/chat/completions',
  upstreamBody: (request, { model, outputLimit, wantOutput, assemble }) =>
    upstreamChatBody({ ...request, model, ...(assemble ? { stream: true } : {}) }, outputLimit, wantOutput),
  usageField: 'usage',
  usageOf: chatUsage,
  // Without usage, the answer's text is counted as a stream's deltas would have been.
  answerOutputText: (answer) => {
    const { choices } = answer as { choices?: unknown };
    const messages = Array.isArray(choices) ? (choices as Array<{ message?: ChunkDelta } | null>) : [];
    return chunkOutputText({ choices: messages.map((choice) => ({ delta: choice?.message ?? null })) });
  },
  stream: chatStream,
  ...OPENAI_ERRORS,
  refusalAnswer: {
    whole: chatCompletion,
    events: (answer, request) => chatCompletionEvents(answer, request.stream_options?.include_usage === true),
  },
};
