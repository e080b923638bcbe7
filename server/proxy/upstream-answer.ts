import type { Context } from 'hono';
import type { AdmittedRequest } from './admit-request.js';
import type { UpstreamUsage } from './meter.js';
import { OpenAIError, renderOpenAIError } from './openai-error.js';
import { streamSinkFor, type StreamSink } from './response-sink.js';
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
export async function sendUpstream(admitted: AdmittedRequest, path: string, body: unknown, signal?: AbortSignal): Promise<UpstreamResponse> {
  try {
    return await callUpstream(admitted.upstream, path, { method: 'POST', body: JSON.stringify(body), ...(signal ? { signal } : {}) });
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

/**
 * A whole (non-streamed) answer: an upstream error passes through and nothing is charged; a success
 * is settled before the body goes back unchanged — on the usage `readUsage` finds in it, else on our
 * prompt count plus the estimate it gives for the output.
 */
export async function finishWholeAnswer(
  c: Context,
  admitted: AdmittedRequest,
  response: UpstreamResponse,
  readUsage: (json: unknown) => { usage: UpstreamUsage | null; estimate: number },
) {
  let text: string;
  try {
    text = await response.body.text();
  } catch (error) {
    await admitted.meter.release();
    return renderOpenAIError(c, new OpenAIError(502, 'server_error', 'upstream_failed', `The upstream "${admitted.upstream.name}" broke off its answer: ${(error as Error).message}`));
  }
  const headers = { ...passThroughHeaders(response.headers), ...admitted.headers };
  if (response.statusCode >= 400) {
    await admitted.meter.release();
    return c.body(text, response.statusCode as 400, headers);
  }
  let usage: UpstreamUsage | null = null;
  let estimate = 0;
  try {
    ({ usage, estimate } = readUsage(JSON.parse(text)));
  } catch {
    // Not JSON: nothing to count; our prompt count stands.
  }
  if (!usage && estimate > 0) await admitted.meter.addOutput(estimate).catch(() => false);
  await admitted.meter.settle(usage, 'ok');
  return c.body(text, response.statusCode as 200, headers);
}

