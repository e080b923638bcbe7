import { isRecord } from '../../util/is-record.js';
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

/**
 * Google refuses a bad key with 400 INVALID_ARGUMENT and an ErrorInfo reason `API_KEY_INVALID` (or
 * another `API_KEY_…`: expired, blocked), and a missing one with 403 "unregistered callers". Passed
 * on, either would blame the client's own key (LobeChat reads "API key not valid" as its key being
 * wrong): they are lobe-quota's key's problem.
 */
export function googleRefusedKey(status: number, body: Buffer): boolean {
  if (status !== 400 && status !== 403) return false;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  const error = isRecord(json) && isRecord(json.error) ? json.error : null;
  if (!error) return false;
  const reasons = Array.isArray(error.details) ? (error.details as unknown[]).map((d) => (isRecord(d) ? d.reason : null)) : [];
  if (reasons.some((reason) => typeof reason === 'string' && reason.startsWith('API_KEY_'))) return true;
  return status === 403 && typeof error.message === 'string' && error.message.includes('unregistered callers');
}

export const GEMINI_ERRORS = { errorBody: geminiErrorBody, refusalBody: geminiRefusalBody, upstreamRefusedKey: googleRefusedKey };
