import { openAIErrorBody } from '../error-shape.js';
import { refusalCode, type Refusal } from '../refusals.js';

/**
 * OpenAI's 429 for a refusal: `insufficient_quota` (the body OpenAI itself sends, which LobeChat and
 * the SDKs recognise), or `rate_limit_exceeded` typed by what the limit counted.
 */
export function openAIRefusalBody(refusal: Refusal): object {
  return { error: { message: refusal.message, type: refusal.kind === 'quota' ? 'insufficient_quota' : refusal.limited, param: null, code: refusalCode(refusal) } };
}

/** How every OpenAI API writes errors and refusals. */
export const OPENAI_ERRORS = { errorBody: openAIErrorBody, refusalBody: openAIRefusalBody };
