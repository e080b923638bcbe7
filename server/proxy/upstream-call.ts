import type { Context } from 'hono';
import { errors, type Dispatcher } from 'undici';
import { OpenAIError } from './openai-error.js';
import type { Upstream } from './upstreams.js';

export type UpstreamResponse = Dispatcher.ResponseData;

const TIMEOUTS = [errors.ConnectTimeoutError, errors.HeadersTimeoutError, errors.BodyTimeoutError];

/** What a failure to talk to the upstream becomes: 504 for a timeout, 502 for anything else. */
export function upstreamFailure(upstream: Upstream, error: unknown): OpenAIError {
  if (TIMEOUTS.some((T) => error instanceof T)) {
    return new OpenAIError(504, 'server_error', 'upstream_timeout', `The upstream "${upstream.name}" did not answer in time.`);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new OpenAIError(502, 'server_error', 'upstream_unreachable', `The upstream "${upstream.name}" could not be reached: ${reason}`);
}

/** Sends a request upstream; never throws anything but an OpenAIError. */
export async function callUpstream(
  upstream: Upstream,
  path: string,
  options: { method: 'GET' | 'POST'; body?: string; signal?: AbortSignal; headers?: Record<string, string> },
): Promise<UpstreamResponse> {
  try {
    return await upstream.request(path, options);
  } catch (error) {
    throw upstreamFailure(upstream, error);
  }
}

/**
 * Headers of an upstream answer worth passing on to the client (not hop-by-hop or framing ones):
 * its type, OpenAI's own and rate-limit headers, Retry-After (with OpenAI's `retry-after-ms`),
 * which the SDKs wait on before retrying an upstream 429 or 503, and those under an API's own
 * `prefixes` (Anthropic's `anthropic-ratelimit-…`).
 */
export function passThroughHeaders(headers: UpstreamResponse['headers'], prefixes: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  // Not Object.entries: an array per header, on every answer.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (
      lower === 'content-type' ||
      lower.startsWith('openai-') ||
      lower === 'x-request-id' ||
      lower.startsWith('x-ratelimit-') ||
      lower.startsWith('retry-after') ||
      prefixes.some((prefix) => lower.startsWith(prefix))
    ) {
      out[lower] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return out;
}

/** The client's headers that its API sends upstream too, those it sent. */
export function forwardedHeaders(c: Context, names: readonly string[] | undefined): Record<string, string> | undefined {
  if (!names) return undefined;
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = c.req.header(name);
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}
