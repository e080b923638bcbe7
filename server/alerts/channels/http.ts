import { request } from 'undici';

/** What a vendor answered (with a 2xx status, from `postJson`). */
export interface HttpAnswer {
  status: number;
  /** The body as text, cut at MAX_ANSWER_BYTES. */
  body: string;
}

/** Vendors answer with a few bytes of JSON; a larger answer is cut, not buffered whole. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** How much of an error answer goes into the error message (it ends up in the outbox and logs). */
const MAX_ERROR_CHARS = 300;

/**
 * POSTs `rawBody` as JSON and resolves with a 2xx answer. Throws an Error naming the vendor for
 * anything else: a non-2xx status (redirects included: a webhook that moved is a configuration
 * problem, and following it would post the alert somewhere nobody chose), a network failure, or no
 * complete answer within `timeoutMs`.
 *
 * Messages name only the target's host: webhook URLs carry their credential in the path or query
 * (Slack's hook path, DingTalk's access_token, WeCom's key), and error text is stored and logged.
 */
export async function postJson(
  vendor: string,
  url: string,
  rawBody: string,
  options: { timeoutMs: number; headers?: Record<string, string> },
): Promise<HttpAnswer> {
  const answer = await vendorRequest(vendor, url, {
    method: 'POST',
    body: rawBody,
    headers: { 'content-type': 'application/json', ...options.headers },
    timeoutMs: options.timeoutMs,
  });
  if (answer.status < 200 || answer.status >= 300) {
    throw new VendorError(`${vendor}: ${hostOf(url)} answered HTTP ${answer.status}${answerExcerpt(answer.body)}`);
  }
  return answer;
}

/**
 * One request, resolving with whatever status the vendor answered (for vendors whose error bodies
 * say more than their status, such as Twilio's and Alibaba Cloud's); throws only when no complete
 * answer came: a network failure or `timeoutMs`. Messages name only the host, as `postJson`'s do.
 */
export async function vendorRequest(
  vendor: string,
  url: string,
  options: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; timeoutMs: number },
): Promise<HttpAnswer> {
  const host = hostOf(url);
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await request(url, {
      method: options.method,
      ...(options.body === undefined ? {} : { body: options.body }),
      headers: { 'user-agent': 'lobe-quota', ...options.headers },
      signal,
    });
    return { status: response.statusCode, body: await readCapped(response.body) };
  } catch (error) {
    if (signal.aborted) throw new Error(`${vendor}: ${host} did not answer within ${options.timeoutMs / 1000} s`, { cause: error });
    throw new Error(`${vendor}: ${options.method} to ${host} failed: ${networkReason(error)}`, { cause: error });
  }
}

/** A failure reported by the vendor (as opposed to one on the way there). */
export class VendorError extends Error {
  override name = 'VendorError';
}

/**
 * The JSON answer of a vendor that reports errors in a 200 body (DingTalk, WeCom, Feishu). An
 * answer that is not a JSON object is an error too: it means the URL does not lead to the vendor.
 */
export function jsonAnswer(vendor: string, url: string, answer: HttpAnswer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(answer.body);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new VendorError(`${vendor}: ${hostOf(url)} answered HTTP ${answer.status} with something that is not a JSON object${answerExcerpt(answer.body)}`);
}

/** ": <first 300 characters of the answer, on one line>", or nothing for an empty answer. */
export function answerExcerpt(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  if (text === '') return '';
  return `: ${text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text}`;
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured URL';
  }
}

async function readCapped(body: AsyncIterable<Buffer | Uint8Array> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.from(chunk);
    chunks.push(buffer);
    size += buffer.length;
    if (size >= MAX_ANSWER_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

/** "connect ECONNREFUSED 127.0.0.1:9": the innermost cause says what happened. */
function networkReason(error: unknown): string {
  let current: unknown = error;
  let reason = String(error);
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    reason = current.message || current.name;
    current = current.cause;
  }
  return reason;
}
