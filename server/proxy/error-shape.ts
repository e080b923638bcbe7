import type { Context } from 'hono';
import { loggablePath } from '../http/loggable-path.js';
import { STORE_UNAVAILABLE_MESSAGE, StoreUnavailableError } from '../store/store-unavailable.js';
import { OpenAIError } from './openai-error.js';

/**
 * How an API writes an error's body (its status and headers are the error's own). A property of
 * the dialect that serves the route, not of the path: Anthropic's `/v1/messages` shares OpenAI's
 * `/v1` prefix but not its error shape.
 */
export type ErrorBody = (error: OpenAIError) => object;

/** OpenAI's `{"error": {"message", "type", "param", "code"}}`. */
export const openAIErrorBody: ErrorBody = (error) => error.body();

/** An error with its status and headers, its body in the given shape. */
export function renderErrorIn(c: Context, error: OpenAIError, body: ErrorBody): Response {
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  return c.json(body(error), error.status);
}

/**
 * Whatever stopped a proxied request, in its API's shape: the proxy's own errors as they are; a
 * store that did not answer as a 503 (which the SDKs retry after Retry-After), never an unmetered
 * request sent upstream; anything else is a bug: logged, and answered without internals.
 */
export function renderProxyFailure(c: Context, error: unknown, body: ErrorBody): Response {
  if (error instanceof OpenAIError) return renderErrorIn(c, error, body);
  if (error instanceof StoreUnavailableError) {
    console.error(`[lobe-quota] ${c.req.method} ${loggablePath(c.req.path)}: ${error.message}`);
    c.header('Retry-After', '1');
    return renderErrorIn(c, new OpenAIError(503, 'server_error', 'store_unavailable', STORE_UNAVAILABLE_MESSAGE), body);
  }
  console.error(`[lobe-quota] ${c.req.method} ${loggablePath(c.req.path)} failed:`, error);
  return renderErrorIn(c, new OpenAIError(500, 'server_error', null, 'The proxy failed; the server log has the details.'), body);
}
