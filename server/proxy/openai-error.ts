import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * An error that stops a proxied request, in OpenAI's terms (status, type, code, param): the proxy's
 * own vocabulary for what went wrong. Each dialect writes it in its API's shape; OpenAI's is
 * `body()`, `{"error": {"message", "type", "param", "code"}}`, which LobeChat and the OpenAI SDKs
 * recognise.
 */
export class OpenAIError extends Error {
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
