import type { Context } from 'hono';
import { z } from 'zod';
import { admitRequest, type AdmittedRequest, type ProxyServices } from './admit-request.js';
import type { UpstreamUsage } from './meter.js';
import { authenticate } from './identity.js';
import { countPrompt } from './prompt-count.js';
import { modelIdSchema, readJsonBody } from './request-body.js';
import { answerRefusal } from './refusal-answer.js';
import { afterAdmission, relayInBackground } from './request-lifetime.js';
import type { StreamSink } from './response-sink.js';
import { SSE_DONE, sseData, SseSplitter } from './sse.js';
import { answerAssembled, finishWholeAnswer, isEventStream, readUsage, sendUpstream, startStream } from './upstream-answer.js';
import { ChatAnswerAssembler } from './assembled-answer.js';
import type { UpstreamResponse } from './upstream-call.js';

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

type ChatRequest = z.infer<typeof chatRequestSchema>;

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

const CHAT_USAGE_FIELDS = {
  input: 'prompt_tokens',
  output: 'completion_tokens',
  inputDetails: 'prompt_tokens_details',
  outputDetails: 'completion_tokens_details',
};

/** OpenAI's chat usage object, as the ledger wants it. */
export const chatUsage = (usage: unknown): UpstreamUsage | null => readUsage(usage, CHAT_USAGE_FIELDS);

interface ChunkDelta {
  content?: unknown;
  reasoning_content?: unknown;
  reasoning?: unknown;
  refusal?: unknown;
  tool_calls?: Array<{ function?: { name?: unknown; arguments?: unknown } }> | null;
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

/** `POST /v1/chat/completions`. */
export function chatCompletions(services: ProxyServices) {
  return async function chatCompletions(c: Context) {
    const receivedAt = performance.now();
    const identity = await authenticate(c, services.store);
    const { request, bytes } = await readJsonBody(c, chatRequestSchema, services.config.proxy.maxBodyBytes);
    const streaming = request.stream === true;
    // A whole answer the proxy assembles from a stream (proxy.streamWholeAnswers) is metered as one.
    const assembled = !streaming && services.config.proxy.streamWholeAnswers;
    const n = request.n ?? 1;
    const wantOutput = (request.max_completion_tokens ?? request.max_tokens ?? services.prices.outputCapOf(request.model)) * n;
    let admitted: AdmittedRequest;
    try {
      admitted = await admitRequest(c, services, identity, {
        model: request.model,
        bodyBytes: bytes,
        bodyUser: request.user,
        countPrompt: (model) => countPrompt(services.tokens, { kind: 'chat', model, body: request }),
        wantOutput,
        streaming: streaming || assembled,
        downgradable: true,
      });
    } catch (error) {
      return answerRefusal(c, services, identity, error, { format: 'chat', model: request.model, streaming, includeUsage: request.stream_options?.include_usage === true });
    }
    return afterAdmission(c, admitted.meter, async () => {
      // Only a stream can be stopped half-way: a whole answer asked of the upstream as one is paid
      // for once it was asked for.
      const abort = streaming || assembled ? new AbortController() : null;
      services.metrics.observeAddedLatency(receivedAt);
      const body = upstreamChatBody({ ...request, model: admitted.model, ...(assembled ? { stream: true } : {}) }, admitted.outputLimit, wantOutput);
      const response = await sendUpstream(admitted, '/chat/completions', JSON.stringify(body), abort?.signal);
      if (!abort || !isEventStream(response)) {
        return finishWholeAnswer(c, admitted, response, {
          usageOf: chatUsage,
          // Without usage, count the answer's text as a stream's deltas would have been counted.
          estimateOf: (answer) => {
            const { choices } = answer as { choices?: unknown };
            const message = { choices: (Array.isArray(choices) ? (choices as Array<{ message?: ChunkDelta } | null>) : []).map((choice) => ({ delta: choice?.message ?? null })) };
            return chunkOutputText(message).reduce((sum, piece) => sum + services.tokens.countText(admitted.model, piece), 0);
          },
        });
      }
      const relay = (sink: StreamSink, clientWantsUsage: boolean) => relayChatStream({ services, admitted, response, sink, abort, model: admitted.model, clientWantsUsage });
      // The assembled answer carries usage, as a whole answer does.
      if (assembled) return answerAssembled(c, admitted, response, new ChatAnswerAssembler(), (sink) => relay(sink, true));
      const sink = startStream(c, admitted, response);
      relayInBackground(admitted.meter, sink, 'chat', () => relay(sink, request.stream_options?.include_usage === true));
      return sink.response;
    });
  };
}

interface RelayInput {
  services: ProxyServices;
  admitted: AdmittedRequest;
  response: UpstreamResponse;
  sink: StreamSink;
  abort: AbortController;
  model: string;
  clientWantsUsage: boolean;
}

/**
 * Passes a chat stream through event by event, counting output as it goes. Settles before the
 * last event (`data: [DONE]`) reaches the client. Cuts the stream cleanly when no budget has room
 * for more output; charges what was delivered when the client leaves; charges nothing when the
 * upstream fails.
 */
async function relayChatStream({ services, admitted, response, sink, abort, model, clientWantsUsage }: RelayInput): Promise<void> {
  const { meter } = admitted;
  const splitter = new SseSplitter();
  let usage: UpstreamUsage | null = null;
  let usageEvent: string | null = null;
  let last: { id?: unknown; created?: unknown; model?: unknown } = {};
  const choiceIndexes = new Set<number>();
  sink.onGone(() => abort.abort());

  const cut = async () => {
    abort.abort();
    const base = { id: last.id, object: 'chat.completion.chunk', created: last.created, model: last.model ?? model };
    for (const index of choiceIndexes.size > 0 ? choiceIndexes : [0]) {
      await sink.write(sseData({ ...base, choices: [{ index, delta: {}, logprobs: null, finish_reason: 'length' }] }));
    }
    const settled = await meter.settle(null, 'cut_off');
    if (clientWantsUsage && settled) {
      const e = settled.entry;
      await sink.write(sseData({ ...base, choices: [], usage: { prompt_tokens: e.inputTokens, completion_tokens: e.outputTokens, total_tokens: e.inputTokens + e.outputTokens } }));
    }
    await sink.write(SSE_DONE);
    sink.end();
  };

  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      for (const event of splitter.push(chunk)) {
        if (event.data === null) continue;
        if (event.data === '[DONE]') continue; // sent by us once settled
        let json: { id?: unknown; created?: unknown; model?: unknown; usage?: unknown; choices?: Array<{ index?: unknown; delta?: ChunkDelta | null }> | null };
        try {
          json = JSON.parse(event.data);
        } catch {
          await sink.write(event.raw);
          continue;
        }
        last = json;
        const reported = chatUsage(json.usage);
        if (reported) {
          usage = reported;
          if ((json.choices ?? []).length === 0) {
            // The extra usage chunk: kept back until settled, and only for a client that asked.
            usageEvent = clientWantsUsage ? event.raw : null;
            continue;
          }
          if (!clientWantsUsage) {
            const { usage: _dropped, ...rest } = json;
            await sink.write(sseData(rest));
            continue;
          }
        }
        for (const choice of json.choices ?? []) if (typeof choice.index === 'number') choiceIndexes.add(choice.index);
        const tokens = chunkOutputText(json).reduce((sum, piece) => sum + services.tokens.countText(model, piece), 0);
        if (tokens > 0 && !(await meter.addOutput(tokens))) return await cut();
        await sink.write(event.raw);
        if (sink.gone) break;
      }
      if (sink.gone) break;
    }
  } catch (error) {
    if (sink.gone) {
      await meter.settle(null, 'client_abort');
      return;
    }
    // The upstream broke off or went quiet: what reached the client is charged (the provider
    // bills it too), and the client hears why.
    await meter.abandon();
    const failure = error instanceof Error ? error.message : String(error);
    await sink.write(sseData({ error: { message: `The upstream "${admitted.upstream.name}" broke off the stream: ${failure}`, type: 'server_error', param: null, code: 'upstream_failed' } }));
    sink.end();
    return;
  }
  if (sink.gone) {
    await meter.settle(null, 'client_abort');
    return;
  }
  await meter.settle(usage, 'ok');
  if (usageEvent) await sink.write(usageEvent);
  await sink.write(SSE_DONE);
  sink.end();
}
