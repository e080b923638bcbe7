import { z } from 'zod';
import { modelIdSchema } from '../request-body.js';
import { sseNamed } from '../sse.js';
import type { AnswerText, Dialect } from './dialect.js';
import { OPENAI_ERRORS } from './openai-common.js';
import { responsesStream, type ResponsesStreamState } from './openai-responses-stream.js';
import { responsesUsage } from './openai-usage.js';

/** What the proxy reads of a Responses API request; everything else passes through untouched. */
export const responsesRequestSchema = z.looseObject({
  model: modelIdSchema,
  // Optional: a request may continue from `previous_response_id` or a stored `prompt` alone.
  input: z.union([z.string(), z.array(z.unknown())], { error: 'must be a string or an array of input items' }).nullable().optional(),
  instructions: z.string().nullable().optional(),
  stream: z.boolean().nullable().optional(),
  max_output_tokens: z.number().int().min(1).nullable().optional(),
  user: z.string().optional(),
});

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/** The smallest `max_output_tokens` OpenAI's Responses API accepts. */
export const MIN_OUTPUT_TOKENS = 16;

/** The body sent upstream: the client's, with `max_output_tokens` clamped to the budget. */
export function upstreamResponsesBody(request: ResponsesRequest, outputLimit: number, wantOutput: number): Record<string, unknown> {
  const body: Record<string, unknown> = { ...request };
  const limit = Math.max(1, outputLimit);
  if (typeof request.max_output_tokens === 'number') body.max_output_tokens = Math.min(request.max_output_tokens, limit);
  else if (limit < wantOutput) body.max_output_tokens = limit;
  return body;
}

/**
 * The generated text of a whole Response's `output` items (for an estimate when the upstream
 * reported no usage): message text and refusals, tool-call arguments, reasoning summaries.
 */
export function responseOutputText(output: unknown): string[] {
  const pieces: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string' && v !== '') pieces.push(v);
  };
  if (!Array.isArray(output)) return pieces;
  for (const item of output as Array<Record<string, unknown> | null>) {
    if (typeof item !== 'object' || item === null) continue;
    add(item.arguments);
    add(item.input);
    add(item.code);
    for (const field of [item.content, item.summary]) {
      if (!Array.isArray(field)) continue;
      for (const part of field as Array<Record<string, unknown> | null>) {
        if (typeof part !== 'object' || part === null) continue;
        add(part.text);
        add(part.refusal);
      }
    }
  }
  return pieces;
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
export function responseEvents(answer: AnswerText): string {
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
  return events.map(([type, payload], sequence) => sseNamed(type, { type, sequence_number: sequence, ...payload })).join('');
}

/** `POST /v1/responses`. */
export const openAIResponses: Dialect<ResponsesRequest, ResponsesStreamState> = {
  name: 'responses',
  api: 'openai',
  requestSchema: responsesRequestSchema,
  admissionFacts: (request, outputCapOf) => ({
    model: request.model,
    bodyUser: request.user,
    wantOutput: request.max_output_tokens ?? outputCapOf(request.model),
    streaming: request.stream === true,
    // OpenAI rejects a max_output_tokens below 16: with less room than that, refuse here (429).
    minOutput: MIN_OUTPUT_TOKENS,
    downgradable: true,
    prompt: { kind: 'responses', body: request },
  }),
  upstreamPath: '/responses',
  upstreamBody: (request, { model, outputLimit, wantOutput, assemble }) =>
    upstreamResponsesBody({ ...request, model, ...(assemble ? { stream: true } : {}) }, outputLimit, wantOutput),
  usageField: 'usage',
  usageOf: responsesUsage,
  answerOutputText: (answer) => responseOutputText((answer as { output?: unknown }).output),
  stream: responsesStream,
  ...OPENAI_ERRORS,
  refusalAnswer: { whole: (answer) => response(answer), events: responseEvents },
};
