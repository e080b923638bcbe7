import type { Context } from 'hono';
import type { KeyIdentity } from '../store/types.js';
import type { ProxyServices } from './admit-request.js';
import { OpenAIError } from './openai-error.js';
import { newRequestId } from './request-id.js';
import { sendWhole, streamSinkFor } from './response-sink.js';
import { SSE_DONE, sseData, sseNamed } from './sse.js';

/** The chat formats a refusal can be answered in as an assistant message. */
export type AnswerFormat = 'chat' | 'responses';

export interface RefusalAnswerShape {
  format: AnswerFormat;
  /** The model the client asked for: the answer names it, as the upstream's would. */
  model: string;
  streaming: boolean;
  /** Chat streams: whether the client asked for the usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
}

/** Headers that tell a client to wait and not retry: meaningless on an answer that succeeded. */
const ERROR_ONLY_HEADERS = new Set(['retry-after', 'x-should-retry']);

/**
 * With `refusalStyle: "answer"` (the key's, else `proxy.refusalStyle`), a quota or rate refusal on
 * a chat endpoint is answered as an ordinary assistant message whose text is the refusal: HTTP 200
 * in the request's own format, streamed when it streams. For chat front ends that show no error
 * body: LobeHub 2.x on the Responses API turns our 429 into "the server seems to be experiencing
 * some difficulties". It is charged nothing and recorded in the ledger with outcome `refused`.
 * `x-quota-refused` carries the refusal's code for clients that look.
 *
 * Anything else (another error, or the "error" style) is thrown on to the usual error handling.
 */
export async function answerRefusal(c: Context, services: ProxyServices, identity: KeyIdentity, error: unknown, shape: RefusalAnswerShape): Promise<Response> {
  const style = identity.key.refusalStyle ?? services.config.proxy.refusalStyle;
  if (style !== 'answer' || !(error instanceof OpenAIError) || error.refused === undefined) throw error;
  const { refused } = error;
  const now = services.clock.now();
  const requestId = newRequestId(now);
  try {
    await services.store.settle({
      holdId: requestId,
      subject: refused.subject,
      now,
      usage: {
        model: shape.model,
        inputTokens: 0,
        outputTokens: 0,
        cachedTokens: 0,
        reasoningTokens: 0,
        costMicros: 0,
        source: 'estimated',
        outcome: 'refused',
        latencyMs: 0,
        sessionId: refused.sessionId,
        tags: refused.tags,
      },
    });
  } catch (failure) {
    // The record is for reports; the person still hears why they were refused.
    console.error('[lobe-quota] could not record a refused request:', (failure as Error).message);
  }

  const headers: Record<string, string> = { 'x-quota-refused': error.code ?? error.type };
  for (const [name, value] of Object.entries(error.headers)) if (!ERROR_ONLY_HEADERS.has(name)) headers[name] = value;
  const answer = { id: requestId.slice('req_'.length).replaceAll('-', ''), text: refusalText(error), model: shape.model, createdSeconds: Math.floor(now / 1000) };

  if (!shape.streaming) {
    const body = shape.format === 'chat' ? chatCompletion(answer) : response(answer);
    return sendWhole(c, 200, { ...headers, 'content-type': 'application/json' }, Buffer.from(JSON.stringify(body)));
  }
  const sink = streamSinkFor(c);
  sink.start(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  // A handful of events, written at once: nothing to meter and nothing to wait for.
  await sink.write((shape.format === 'chat' ? chatCompletionEvents(answer, shape.includeUsage) : responseEvents(answer)).join(''));
  sink.end();
  return sink.response;
}

/** The refusal as a person reads it in the chat: the message names the budget, usage, limit and reset. */
export function refusalText(error: OpenAIError): string {
  if (error.code === 'rate_limit_exceeded') return `⚠️ lobe-quota: ${error.message}`;
  return `⚠️ lobe-quota: ${error.message}\n\nWhat you can do: wait for the reset, or ask your lobe-quota admin to raise the budget. Nothing was charged for this message.`;
}

export interface AnswerText {
  /** Unique per answer; prefixed per format. */
  id: string;
  text: string;
  model: string;
  createdSeconds: number;
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
export function chatCompletionEvents({ id, text, model, createdSeconds }: AnswerText, includeUsage: boolean): string[] {
  const chunk = (choices: unknown[], extra: object = {}) => sseData({ id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created: createdSeconds, model, choices, ...extra });
  const events = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]),
  ];
  if (includeUsage) events.push(chunk([], { usage: NO_CHAT_USAGE }));
  events.push(SSE_DONE);
  return events;
}

const NO_RESPONSES_USAGE = { input_tokens: 0, input_tokens_details: { cached_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 0 };

function messageItem(id: string, text: string, status: 'in_progress' | 'completed') {
  return { id: `msg_${id}`, type: 'message', status, role: 'assistant', content: status === 'completed' ? [outputText(text)] : [] };
}

const outputText = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });

/** A whole Responses API answer, as OpenAI sends one (the fields the SDKs and LobeChat read). */
export function response({ id, text, model, createdSeconds }: AnswerText, status: 'in_progress' | 'completed' = 'completed') {
  const done = status === 'completed';
  return {
    id: `resp_${id}`,
    object: 'response',
    created_at: createdSeconds,
    status,
    completed_at: done ? createdSeconds : null,
    error: null,
    incomplete_details: null,
    model,
    output: done ? [messageItem(id, text, 'completed')] : [],
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: done ? NO_RESPONSES_USAGE : null,
    metadata: {},
  };
}

/** The same answer as a Responses stream: the events OpenAI sends for one text message, numbered. */
export function responseEvents(answer: AnswerText): string[] {
  const item = { item_id: `msg_${answer.id}`, output_index: 0, content_index: 0 };
  const events: Array<[string, Record<string, unknown>]> = [
    ['response.created', { response: response(answer, 'in_progress') }],
    ['response.in_progress', { response: response(answer, 'in_progress') }],
    ['response.output_item.added', { output_index: 0, item: messageItem(answer.id, answer.text, 'in_progress') }],
    ['response.content_part.added', { ...item, part: outputText('') }],
    ['response.output_text.delta', { ...item, delta: answer.text, logprobs: [] }],
    ['response.output_text.done', { ...item, text: answer.text, logprobs: [] }],
    ['response.content_part.done', { ...item, part: outputText(answer.text) }],
    ['response.output_item.done', { output_index: 0, item: messageItem(answer.id, answer.text, 'completed') }],
    ['response.completed', { response: response(answer) }],
  ];
  return events.map(([type, payload], sequence) => sseNamed(type, { type, sequence_number: sequence, ...payload }));
}
