import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { OpenAIError, renderOpenAIError } from '../proxy/openai-error.js';
import { StoreUnavailableError } from '../store/store-unavailable.js';

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
 * Renders ApiErrors, and OpenAIErrors on `/v1`; anything else is a bug: logged, and answered
 * without internals (in OpenAI's shape on `/v1`).
 */
export function renderError(error: Error, c: Context) {
  if (error instanceof ApiError) return errorJson(c, error);
  if (error instanceof OpenAIError) return renderOpenAIError(c, error);
  if (error instanceof StoreUnavailableError) return storeUnavailable(c, error);
  console.error(`[lobe-quota] ${c.req.method} ${c.req.path} failed:`, error);
  if (c.req.path.startsWith('/v1/')) {
    return renderOpenAIError(c, new OpenAIError(500, 'server_error', null, 'The proxy failed; the server log has the details.'));
  }
  return errorJson(c, new ApiError('internal_error', 'internal error; the server log has the details'));
}

/**
 * The database did not answer after the store's retries: a 503 (OpenAI's shape on `/v1`, which the
 * SDKs retry after Retry-After), never an unmetered request sent upstream.
 */
function storeUnavailable(c: Context, error: StoreUnavailableError) {
  console.error(`[lobe-quota] ${c.req.method} ${c.req.path}: ${error.message}`);
  c.header('Retry-After', '1');
  const message = 'lobe-quota cannot reach its database, so it cannot meter this request; try again shortly.';
  if (c.req.path.startsWith('/v1/')) return renderOpenAIError(c, new OpenAIError(503, 'server_error', 'store_unavailable', message));
  return errorJson(c, new ApiError('unavailable', message));
}
