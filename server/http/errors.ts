import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { openAIErrorBody, renderProxyFailure } from '../proxy/error-shape.js';
import { OpenAIError } from '../proxy/openai-error.js';
import { STORE_UNAVAILABLE_MESSAGE, StoreUnavailableError } from '../store/store-unavailable.js';
import { loggablePath } from './loggable-path.js';

export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'internal_error'
  | 'unavailable';

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  internal_error: 500,
  unavailable: 503,
};

/** The one error that crosses HTTP outside `/v1` and the plugin routes: `{error: {code, message}}`. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): ContentfulStatusCode {
    return STATUS[this.code];
  }
}

export const errorJson = (c: Context, error: ApiError) =>
  c.json({ error: { code: error.code, message: error.message } }, error.status);

/**
 * Renders ApiErrors; OpenAIErrors anywhere, and everything on a `/v1` path, in OpenAI's shape (a
 * metered route renders its own errors in its dialect's shape: this is the fallback for the paths
 * no dialect owns, such as `GET /v1/models` and unknown `/v1` paths). Anything else is a bug:
 * logged, and answered without internals.
 */
export function renderError(error: Error, c: Context) {
  if (error instanceof ApiError) return errorJson(c, error);
  if (error instanceof OpenAIError || c.req.path.startsWith('/v1/')) return renderProxyFailure(c, error, openAIErrorBody);
  if (error instanceof StoreUnavailableError) {
    // The database did not answer after the store's retries: a 503, whatever was asked.
    console.error(`[lobe-quota] ${c.req.method} ${loggablePath(c.req.path)}: ${error.message}`);
    c.header('Retry-After', '1');
    return errorJson(c, new ApiError('unavailable', STORE_UNAVAILABLE_MESSAGE));
  }
  console.error(`[lobe-quota] ${c.req.method} ${loggablePath(c.req.path)} failed:`, error);
  return errorJson(c, new ApiError('internal_error', 'internal error; the server log has the details'));
}
