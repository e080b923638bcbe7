import type { Context } from 'hono';
import type { AdmittedRequest } from './admit-request.js';
import { assemblingSink, type Assembler } from './assembled-answer.js';
import type { Dialect } from './dialects/dialect.js';
import { renderErrorIn, type ErrorBody } from './error-shape.js';
import { topLevelField } from './json-field.js';
import type { UpstreamUsage } from './meter.js';
import { STREAM_CONTENT_TYPES, type StreamFraming } from './ndjson.js';
import { OpenAIError } from './openai-error.js';
import { sendWhole, streamSinkFor, type StreamSink } from './response-sink.js';
import { passThroughHeaders, upstreamFailure, type UpstreamResponse } from './upstream-call.js';

/**
 * Sends an admitted request upstream (as callUpstream, without its await on the way of every
 * request); when that fails the hold goes back before the error (a 502 or 504) does.
 */
export function sendUpstream(
  admitted: AdmittedRequest,
  path: string,
  body: string,
  { signal, headers }: { signal?: AbortSignal | undefined; headers?: Record<string, string> | undefined } = {},
): Promise<UpstreamResponse> {
  const { upstream } = admitted;
  let sent: Promise<UpstreamResponse>;
  try {
    sent = upstream.request(path, { method: 'POST', body, ...(signal ? { signal } : {}), ...(headers ? { headers } : {}) });
  } catch (error) {
    sent = Promise.reject(error);
  }
  return sent.catch(async (error: unknown) => {
    await admitted.meter.release();
    throw upstreamFailure(upstream, error);
  });
}

/** Whether the upstream answered a stream request with a stream of its framing (and not, say, an error). */
export const isEventStream = (response: UpstreamResponse, framing: StreamFraming = 'sse'): boolean =>
  response.statusCode >= 200 && response.statusCode < 300 && String(response.headers['content-type'] ?? '').includes(STREAM_CONTENT_TYPES[framing]);

/** Starts the client's side of a stream with the upstream's status and headers plus ours. */
export function startStream(c: Context, admitted: AdmittedRequest, response: UpstreamResponse, headerPrefixes?: readonly string[]): StreamSink {
  const sink = streamSinkFor(c);
  sink.start(response.statusCode, {
    ...passThroughHeaders(response.headers, headerPrefixes),
    ...admitted.streamHeaders(),
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  return sink;
}

/**
 * The whole body of an upstream answer, as the bytes that came (a whole answer is small). A body
 * that breaks off rejects, or (`brokenOff: 'keep'`, for an error body that is only passed on) gives
 * what arrived.
 */
export function readWholeBody(response: UpstreamResponse, brokenOff: 'reject' | 'keep' = 'reject'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const whole = () => (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    response.body.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.body.once('end', () => resolve(whole()));
    response.body.once('error', (error) => (brokenOff === 'keep' ? resolve(whole()) : reject(error)));
  });
}

/** How an API's whole answer is charged (its usage read, or its output counted when it has none) and its errors written. */
export type WholeAnswerFormat = Pick<Dialect<unknown>, 'usageField' | 'usageOf' | 'answerOutputText' | 'errorBody' | 'answerHeaderPrefixes' | 'upstreamRefusedKey'>;

function parseOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A JSON object's text, parsed; null for anything else (an upstream's 2xx must be one). */
function parseObject(body: Buffer): object | null {
  const parsed = parseOrNull(body.toString('utf8'));
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : null;
}

/**
 * What an upstream's non-2xx answer becomes. Its own errors pass through with their status, body
 * and Retry-After; two are not the client's business and become a 502 of ours: a 401 (or what the
 * API says instead: `keyRefused`), which means the upstream refused lobe-quota's own key (the
 * client's key was checked here and never leaves), and a 3xx, which means the configured base URL
 * is wrong (a client must not follow it, and an empty 302 would read as success).
 */
export function upstreamRefusal(admitted: Pick<AdmittedRequest, 'upstream'>, status: number, keyRefused = false): OpenAIError | null {
  const name = admitted.upstream.name;
  if (status === 401 || keyRefused) {
    return new OpenAIError(502, 'server_error', 'upstream_auth_failed', `The upstream "${name}" rejected lobe-quota's own key (HTTP ${status}), not yours: the server's upstream API key is missing or wrong. Tell your lobe-quota admin.`);
  }
  if (status >= 300 && status < 400) {
    return new OpenAIError(502, 'server_error', 'upstream_redirect', `The upstream "${name}" answered with a redirect (HTTP ${status}) instead of an answer: its base URL in lobe-quota's configuration is probably wrong. Tell your lobe-quota admin.`);
  }
  return null;
}

/**
 * A whole (non-streamed) answer: an upstream error passes through and nothing is charged; a success
 * is settled before the body goes back unchanged, byte for byte. The usage is read from the answer's
 * top-level usage field alone (see topLevelField); only an answer without one is parsed whole, for
 * the estimate of its output (`countOutput` of its text) that is then charged with our prompt
 * count. An answer that is not a JSON object is the upstream's failure: a 502, nothing charged.
 */
export async function finishWholeAnswer(
  c: Context,
  admitted: AdmittedRequest,
  response: UpstreamResponse,
  format: WholeAnswerFormat,
  countOutput: (text: readonly string[]) => number,
) {
  const failed = async (error: OpenAIError) => {
    await admitted.meter.release();
    Object.assign(error.headers, admitted.headersAfter(null));
    return renderErrorIn(c, error, format.errorBody);
  };
  let body: Buffer;
  try {
    body = await readWholeBody(response);
  } catch (error) {
    return failed(new OpenAIError(502, 'server_error', 'upstream_failed', `The upstream "${admitted.upstream.name}" broke off its answer: ${(error as Error).message}`));
  }
  if (response.statusCode < 200 || response.statusCode >= 300) {
    const refusal = upstreamRefusal(admitted, response.statusCode, format.upstreamRefusedKey?.(response.statusCode, body) ?? false);
    if (refusal) return failed(refusal);
    await admitted.meter.release();
    return sendWhole(c, response.statusCode, Object.assign(passThroughHeaders(response.headers, format.answerHeaderPrefixes), admitted.headersAfter(null)), body);
  }
  // An API without a usage field (its counts at the answer's top level) has its whole answer parsed.
  let parsed: object | null | undefined;
  let usage: UpstreamUsage | null;
  if (format.usageField === null) {
    parsed = parseObject(body);
    usage = parsed ? format.usageOf(parsed) : null;
  } else {
    const usageText = topLevelField(body, format.usageField);
    usage = usageText === null ? null : format.usageOf(parseOrNull(usageText));
  }
  if (!usage) {
    // Charged on our prompt count, plus the output counted in the answer's text.
    if (parsed === undefined) parsed = parseObject(body);
    if (!parsed) return failed(new OpenAIError(502, 'server_error', 'upstream_bad_answer', `The upstream "${admitted.upstream.name}" answered with something that is not a JSON object.`));
    admitted.meter.recordOutput(countOutput(format.answerOutputText(parsed)));
  }
  const settled = await admitted.meter.settle(usage, 'ok');
  // One object for the answer's headers: the upstream's passed on, ours added (sendWhole takes it over).
  const headers = Object.assign(passThroughHeaders(response.headers, format.answerHeaderPrefixes), admitted.headersAfter(settled?.entry ?? null));
  return sendWhole(c, response.statusCode, headers, body);
}

/**
 * A whole answer served from an upstream stream (`proxy.streamWholeAnswers`): `relay` meters the
 * stream into a sink that assembles it, and the assembled answer goes out once the request is
 * settled. An error the stream ended in is a 502 in the API's shape.
 */
export async function answerAssembled(
  c: Context,
  admitted: AdmittedRequest,
  response: UpstreamResponse,
  assembler: Assembler,
  relay: (sink: StreamSink) => Promise<void>,
  errorBody: ErrorBody,
  framing?: StreamFraming,
): Promise<Response> {
  await relay(assemblingSink(c, assembler, framing));
  // The relay settles on every way out (and afterAdmission ends it when it throws): this is for one that did not.
  await admitted.meter.abandon();
  const headers = { ...passThroughHeaders(response.headers), ...admitted.headersAfter(admitted.meter.settledEntry) };
  if (assembler.error) {
    const { message, type, code, param } = assembler.error;
    const error = new OpenAIError(502, typeof type === 'string' ? type : 'server_error', typeof code === 'string' ? code : 'upstream_failed', typeof message === 'string' ? message : 'The upstream failed.', typeof param === 'string' ? param : null);
    Object.assign(error.headers, headers);
    delete error.headers['content-type'];
    return renderErrorIn(c, error, errorBody);
  }
  return sendWhole(c, response.statusCode, { ...headers, 'content-type': 'application/json' }, Buffer.from(JSON.stringify(assembler.answer())));
}
