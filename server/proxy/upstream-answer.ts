import type { Context } from 'hono';
import type { AdmittedRequest } from './admit-request.js';
import type { UpstreamUsage } from './meter.js';
import { OpenAIError, renderOpenAIError } from './openai-error.js';
import { topLevelField } from './json-field.js';
import { sendWhole, streamSinkFor, type StreamSink } from './response-sink.js';
import { callUpstream, passThroughHeaders, type UpstreamResponse } from './upstream-call.js';

/** A token count from an upstream usage object: a whole number ≥ 0, or 0 when absent or odd. */
export const usageCount = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);

/** Where an API puts its token counts: chat uses prompt/completion, the Responses API input/output. */
export interface UsageFields {
  input: string;
  output: string;
  inputDetails: string;
  outputDetails: string;
}

/**
 * An upstream usage object as the ledger wants it; null when it carries neither count. Cached
 * tokens are part of the input, reasoning tokens part of the output, as OpenAI reports them.
 */
export function readUsage(usage: unknown, fields: UsageFields): UpstreamUsage | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  if (typeof u[fields.input] !== 'number' && typeof u[fields.output] !== 'number') return null;
  const details = (key: string) => (typeof u[key] === 'object' && u[key] !== null ? (u[key] as Record<string, unknown>) : {});
  return {
    inputTokens: usageCount(u[fields.input]),
    outputTokens: usageCount(u[fields.output]),
    cachedTokens: usageCount(details(fields.inputDetails).cached_tokens),
    reasoningTokens: usageCount(details(fields.outputDetails).reasoning_tokens),
  };
}

/** Sends an admitted request upstream; when that fails the hold goes back before the error does. */
export async function sendUpstream(admitted: AdmittedRequest, path: string, body: string, signal?: AbortSignal): Promise<UpstreamResponse> {
  try {
    return await callUpstream(admitted.upstream, path, { method: 'POST', body, ...(signal ? { signal } : {}) });
  } catch (error) {
    await admitted.meter.release();
    throw error;
  }
}

/** Whether the upstream answered a stream request with a stream (and not, say, an error). */
export const isEventStream = (streaming: boolean, response: UpstreamResponse): boolean =>
  streaming && response.statusCode < 400 && String(response.headers['content-type'] ?? '').includes('text/event-stream');

/** Starts the client's side of a stream with the upstream's status and headers plus ours. */
export function startStream(c: Context, admitted: AdmittedRequest, response: UpstreamResponse): StreamSink {
  const sink = streamSinkFor(c);
  sink.start(response.statusCode, {
    ...passThroughHeaders(response.headers),
    ...admitted.headers,
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  return sink;
}

/** The whole body of an upstream answer, as the bytes that came (a whole answer is small). */
function readWholeBody(response: UpstreamResponse): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.body.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.body.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    response.body.once('error', reject);
  });
}

/** How an API's whole answer is charged: its usage object read, or its output counted when it has none. */
export interface WholeAnswerUsage {
  /** The ledger's usage from the answer's top-level `usage` value; null when it carries no counts. */
  usageOf(usage: unknown): UpstreamUsage | null;
  /** Output tokens counted from the parsed answer (an object), for one that reported no usage. */
  estimateOf(answer: object): number;
}

function parseOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The estimate of an answer without usage; 0 when the text is not JSON or not of the API's shape. */
function estimateOutput(answer: WholeAnswerUsage, text: string): number {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? answer.estimateOf(parsed) : 0;
  } catch {
    return 0;
  }
}

/**
 * A whole (non-streamed) answer: an upstream error passes through and nothing is charged; a success
 * is settled before the body goes back unchanged, byte for byte. The usage is read from the answer's
 * top-level `usage` alone (see topLevelField); only an answer without one is parsed whole, for the
 * estimate of its output that is then charged with our prompt count.
 */
export async function finishWholeAnswer(c: Context, admitted: AdmittedRequest, response: UpstreamResponse, answer: WholeAnswerUsage) {
  let body: Buffer;
  try {
    body = await readWholeBody(response);
  } catch (error) {
    await admitted.meter.release();
    return renderOpenAIError(c, new OpenAIError(502, 'server_error', 'upstream_failed', `The upstream "${admitted.upstream.name}" broke off its answer: ${(error as Error).message}`));
  }
  const headers = { ...passThroughHeaders(response.headers), ...admitted.headers };
  if (response.statusCode >= 400) {
    await admitted.meter.release();
    return sendWhole(c, response.statusCode, headers, body);
  }
  const usageText = topLevelField(body, 'usage');
  const usage = usageText === null ? null : answer.usageOf(parseOrNull(usageText));
  if (!usage) {
    // Charged on our prompt count, plus the output counted when the answer lets us.
    const estimate = estimateOutput(answer, body.toString('utf8'));
    if (estimate > 0) await admitted.meter.addOutput(estimate).catch(() => false);
  }
  await admitted.meter.settle(usage, 'ok');
  return sendWhole(c, response.statusCode, headers, body);
}
