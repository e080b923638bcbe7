import { z } from 'zod';
import type { ErrorBody } from '../error-shape.js';
import type { UpstreamUsage } from '../meter.js';
import type { Refusal } from '../refusals.js';
import { usageCount } from '../usage-count.js';
import { BEARER_CLIENT_KEY } from '../identity.js';
import type { ClientKey } from './dialect.js';

/** Ollama's error body: `{"error": "…"}` (ollama-js throws its text as a ResponseError). */
export const ollamaErrorBody: ErrorBody = (error) => ({ error: error.message });

/** A quota or rate refusal (HTTP 429, with Retry-After and `x-should-retry: false`) in Ollama's shape. */
export const ollamaRefusalBody = (refusal: Refusal): object => ({ error: refusal.message });

/** How every Ollama API writes errors and refusals. */
export const OLLAMA_ERRORS = { errorBody: ollamaErrorBody, refusalBody: ollamaRefusalBody };

/**
 * The key of a key-scoped base URL, `<lobe-quota>/ollama/k/<lq-key>`, for clients that cannot
 * send a header: ollama-js sends none unless given `headers`, and LobeChat's Ollama provider takes
 * only a base URL (`OLLAMA_PROXY_URL`). ollama-js keeps a base URL's path (`formatHost`), so every
 * call it makes lands under it.
 *
 * The risk, accepted for these clients only: the key is part of a URL, and URLs are written down
 * where headers are not — reverse-proxy access logs, browser history and devtools when LobeChat
 * calls from the browser, LobeChat's own saved settings. So: give each such deployment a key of
 * its own with its own budget (revocable at once, `DELETE /admin/keys/:id`), never the admin
 * token; lobe-quota itself never writes the path of such a request to its logs (loggablePath).
 */
export const KEY_IN_URL: ClientKey = {
  read: (request) => request.param?.('key') ?? null,
  hint: '<lobe-quota>/ollama/k/lq-…',
};

/**
 * `Authorization: Bearer lq-…`, as ollama-js sends it when given `headers`. A client that comes
 * without a key is told of the key-scoped base URL too: LobeChat, which sends none, shows it.
 */
export const OLLAMA_BEARER: ClientKey = {
  read: BEARER_CLIENT_KEY.read,
  hint: 'Authorization: Bearer lq-…", or a base URL ending in "/ollama/k/lq-…',
};

/** `options`, of which the proxy reads `num_predict` (the output limit; -1, the default, and 0 are none, -2 fills the context). */
export const ollamaOptionsSchema = z.looseObject({ num_predict: z.number().int().nullable().optional() }).nullable().optional();

type Options = z.infer<typeof ollamaOptionsSchema>;

/**
 * The output a request asks for: its `num_predict`, or the model's cap when it sets no limit. Ollama
 * reads 0 as no limit too (its runners stop at `num_predict` only when it is above 0), so 0 asks
 * for the cap, never for nothing.
 */
export function wantOutputOf(options: Options, cap: number): number {
  const numPredict = options?.num_predict;
  return typeof numPredict === 'number' && numPredict > 0 ? numPredict : cap;
}

/**
 * The request's `options` with `num_predict` set to the output admission allowed. Always set:
 * Ollama's own default is no limit at all, so a request without one would run past its hold.
 */
export function withOutputLimit(options: Options, outputLimit: number): Record<string, unknown> {
  return { ...options, num_predict: Math.max(1, outputLimit) };
}

/**
 * The ledger's usage from an Ollama answer (its last line, or a whole answer): `prompt_eval_count`
 * is the whole prompt, `eval_count` the whole output (thinking included). Ollama leaves a count out
 * when it is zero; an answer without a prompt count is charged on our own count (null), as is one
 * whose counts are impossible.
 */
export function ollamaUsage(answer: unknown): UpstreamUsage | null {
  if (typeof answer !== 'object' || answer === null) return null;
  const { prompt_eval_count, eval_count } = answer as { prompt_eval_count?: unknown; eval_count?: unknown };
  const input = usageCount(prompt_eval_count);
  const output = usageCount(eval_count);
  if (input === undefined || input === null || output === null) return null;
  return { inputTokens: input, outputTokens: output ?? 0, cachedTokens: 0, reasoningTokens: 0 };
}
