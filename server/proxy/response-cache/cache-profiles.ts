import { isRecord } from '../../util/is-record.js';

/**
 * How one API's requests are cached: which top-level fields do not shape the answer (left out of
 * the canonical request, so requests that differ only there share an entry), where its sampling
 * temperature is and what it is when absent, and which requests are never cached.
 */
export interface CacheProfile {
  /** Top-level body fields that change nothing in the answer's bytes. */
  readonly ignoredFields: readonly string[];
  /**
   * The request's sampling temperature, the API's default when it sets none; 0 for an API that
   * does not sample (embeddings), whose answers are the same every time.
   */
  temperature(body: Record<string, unknown>): number;
  /** Requests whose answer is not the answer (Responses' `background`: a queued placeholder). */
  never?(body: Record<string, unknown>): boolean;
}

const numberOr = (value: unknown, fallback: number): number => (typeof value === 'number' ? value : fallback);
const topLevel = (fallback: number) => (body: Record<string, unknown>) => numberOr(body.temperature, fallback);
const nested = (field: string, fallback: number) => (body: Record<string, unknown>) => {
  const inner = body[field];
  return numberOr(isRecord(inner) ? inner.temperature : undefined, fallback);
};
const deterministic = () => 0;

/**
 * The profiles, by dialect name. Defaults as each provider documents them: OpenAI's Chat
 * Completions and Responses 1, Anthropic's 1, Gemini's 1 (2.x models), Ollama's 0.8. Ignored fields:
 * - OpenAI `user`, `safety_identifier` (abuse monitoring), `metadata` (tags for OpenAI's dashboard),
 *   `prompt_cache_key` (a routing hint for OpenAI's own prompt cache): none shape the answer.
 *   `stream_options` is kept: `include_usage` adds a chunk to the stream the client gets.
 *   Responses' `store` is kept: whether the answer's id can be continued from depends on it.
 * - Anthropic `metadata` (an end-user id for abuse monitoring).
 * - Ollama `keep_alive` (how long the model stays loaded).
 * An API not listed here is never cached.
 */
export const CACHE_PROFILES: Readonly<Record<string, CacheProfile>> = {
  chat: { ignoredFields: ['user', 'safety_identifier', 'metadata', 'prompt_cache_key'], temperature: topLevel(1) },
  responses: {
    ignoredFields: ['user', 'safety_identifier', 'metadata', 'prompt_cache_key'],
    temperature: topLevel(1),
    never: (body) => body.background === true,
  },
  embeddings: { ignoredFields: ['user'], temperature: deterministic },
  messages: { ignoredFields: ['metadata'], temperature: topLevel(1) },
  gemini: { ignoredFields: [], temperature: nested('generationConfig', 1) },
  'ollama-chat': { ignoredFields: ['keep_alive'], temperature: nested('options', 0.8) },
  'ollama-generate': { ignoredFields: ['keep_alive'], temperature: nested('options', 0.8) },
  'ollama-embed': { ignoredFields: ['keep_alive'], temperature: deterministic },
  'ollama-embeddings': { ignoredFields: ['keep_alive'], temperature: deterministic },
};
