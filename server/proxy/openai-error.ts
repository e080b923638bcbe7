import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { RequestSubject } from '../quota/scope.js';

/** Who a quota or rate refusal refused, so it can be answered as a message and recorded (refusal-answer.ts). */
export interface RefusedRequest {
  subject: RequestSubject;
  sessionId: string | null;
  tags: Record<string, string>;
}

/**
 * An error on `/v1/*`, rendered the way OpenAI renders its own, so LobeChat and the OpenAI SDKs
 * recognise it: `{"error": {"message", "type", "param", "code"}}`.
 */
export class OpenAIError extends Error {
  /** Set on quota and rate refusals, by admission. */
  refused?: RefusedRequest;

  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: string,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'OpenAIError';
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new OpenAIError(400, 'invalid_request_error', code, message, param);

export function renderOpenAIError(c: Context, error: OpenAIError) {
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  return c.json(error.body(), error.status);
}
