import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { OpenAIError, renderOpenAIError } from '../proxy/openai-error.js';

export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'internal_error';

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  internal_error: 500,
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
  console.error(`[lobe-quota] ${c.req.method} ${c.req.path} failed:`, error);
  if (c.req.path.startsWith('/v1/')) {
    return renderOpenAIError(c, new OpenAIError(500, 'server_error', null, 'The proxy failed; the server log has the details.'));
  }
  return errorJson(c, new ApiError('internal_error', 'internal error; the server log has the details'));
}
