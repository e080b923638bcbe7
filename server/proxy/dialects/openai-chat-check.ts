import { MAX_MODEL_ID_LENGTH } from '../request-body.js';
import type { ChatRequest } from './openai-chat.js';

type Json = Record<string, unknown>;

/** A JSON object (what JSON.parse gives), without an own `__proto__` key, which zod drops and a copy would keep. */
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v) && !Object.hasOwn(v, '__proto__');

/** `z.number().int().min(min).max(max)`, within bounds where zod's integer check cannot differ. */
const isIntIn = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** `.nullable().optional()` of a key present with an undefined value too, as zod takes it. */
const absentOrNull = (v: unknown): boolean => v === undefined || v === null;

/** The fields of chatRequestSchema, in its order: zod writes them first, the others after in the body's order. */
const FIELDS = ['model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'n', 'user'] as const;
const KNOWN: ReadonlySet<string> = new Set(FIELDS);

/** A limit's largest value decided here; a larger one (never a real limit) goes to zod. */
const MAX_DECIDED_TOKENS = 1_000_000_000;

/**
 * `chatRequestSchema.safeParse(value).data` for the request the proxy sees all day, without
 * zod's machinery (a fifth of parsing a body, by the proxy bench's profile): the same keys in the
 * same order, messages and `stream_options` copied as zod copies them, everything else the same
 * values. Null for anything it does not decide — every request zod refuses, and a few it would
 * take — which then goes to the schema, for its answer and its error message. So a request is
 * judged the same either way (openai-chat-check.test.ts checks this against zod).
 */
export function quickChatRequest(value: unknown): ChatRequest | null {
  if (!isObject(value)) return null;
  const { model, messages, stream, stream_options: options, max_tokens: maxTokens, max_completion_tokens: maxCompletion, n, user } = value;
  if (typeof model !== 'string' || model.length < 1 || model.length > MAX_MODEL_ID_LENGTH) return null;
  if (!Array.isArray(messages) || messages.length === 0) return null;
  if (!(absentOrNull(stream) || typeof stream === 'boolean')) return null;
  if (!(absentOrNull(options) || (isObject(options) && (options.include_usage === undefined || typeof options.include_usage === 'boolean')))) return null;
  if (!(absentOrNull(maxTokens) || isIntIn(maxTokens, 1, MAX_DECIDED_TOKENS))) return null;
  if (!(absentOrNull(maxCompletion) || isIntIn(maxCompletion, 1, MAX_DECIDED_TOKENS))) return null;
  if (!(absentOrNull(n) || isIntIn(n, 1, 128))) return null;
  if (!(user === undefined || typeof user === 'string')) return null;

  const copied = new Array<Json>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    if (!isObject(message) || typeof message.role !== 'string') return null;
    copied[i] = { role: message.role, ...message };
  }
  const out: Json = {};
  for (const field of FIELDS) {
    if (!Object.hasOwn(value, field)) continue;
    if (field === 'messages') out.messages = copied;
    else if (field === 'stream_options' && isObject(options)) out.stream_options = Object.hasOwn(options, 'include_usage') ? { include_usage: options.include_usage, ...options } : { ...options };
    else out[field] = value[field];
  }
  for (const key of Object.keys(value)) if (!KNOWN.has(key)) out[key] = value[key];
  return out as ChatRequest;
}
