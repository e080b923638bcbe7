import type { ErrorBody } from '../error-shape.js';
import { refusalCode, type Refusal } from '../refusals.js';

/**
 * Google's canonical status for each HTTP status the proxy answers with (google.rpc.Code, as the
 * Gemini API maps them). A 413 has no status of its own: Google answers a body too large with
 * INVALID_ARGUMENT; a 502 neither: the upstream is UNAVAILABLE to the client.
 */
const GOOGLE_STATUS: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export const googleStatusOf = (status: number): string => GOOGLE_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION');

/**
 * Google's error object: `{"error": {"code", "message", "status"}}`, with our own code as an
 * ErrorInfo detail (Google's place for a machine-readable reason, in its UPPER_SNAKE_CASE) under
 * the `lobe-quota` domain, so that a client can tell our errors from Google's.
 */
export function googleError(httpStatus: number, message: string, code: string | null = null) {
  const details = code === null ? {} : { details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: code.toUpperCase(), domain: 'lobe-quota' }] };
  return { error: { code: httpStatus, message, status: googleStatusOf(httpStatus), ...details } };
}

export const geminiErrorBody: ErrorBody = (error) => googleError(error.status, error.message, error.code);

/**
 * A quota or rate refusal: HTTP 429 `RESOURCE_EXHAUSTED`, which @google/genai surfaces as an
 * ApiError with status 429 and (without `httpOptions.retryOptions`, which LobeChat does not set)
 * does not retry; LobeChat shows it as "quota limit reached" with our message.
 */
export const geminiRefusalBody = (refusal: Refusal): object => googleError(refusal.status, refusal.message, refusalCode(refusal));

export const GEMINI_ERRORS = { errorBody: geminiErrorBody, refusalBody: geminiRefusalBody };
