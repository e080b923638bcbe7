import type { UpstreamUsage } from '../meter.js';
import { usageCount } from '../usage-count.js';

/** Where an API puts its token counts: chat uses prompt/completion, the Responses API input/output. */
export interface UsageFields {
  input: string;
  output: string;
  inputDetails: string;
  outputDetails: string;
}

/**
 * An OpenAI usage object as the ledger wants it; null when it carries neither count, or when any
 * count it carries is impossible — then the request is charged on our own count instead, as if the
 * upstream had reported nothing. Cached tokens are part of the input, reasoning tokens part of the
 * output, as OpenAI reports them.
 */
export function readUsage(usage: unknown, fields: UsageFields): UpstreamUsage | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  const details = (key: string) => (typeof u[key] === 'object' && u[key] !== null ? (u[key] as Record<string, unknown>) : {});
  const input = usageCount(u[fields.input]);
  const output = usageCount(u[fields.output]);
  const cached = usageCount(details(fields.inputDetails).cached_tokens);
  const reasoning = usageCount(details(fields.outputDetails).reasoning_tokens);
  if (input === undefined && output === undefined) return null;
  if (input === null || output === null || cached === null || reasoning === null) return null;
  return { inputTokens: input ?? 0, outputTokens: output ?? 0, cachedTokens: cached ?? 0, reasoningTokens: reasoning ?? 0 };
}

const CHAT_USAGE_FIELDS: UsageFields = { input: 'prompt_tokens', output: 'completion_tokens', inputDetails: 'prompt_tokens_details', outputDetails: 'completion_tokens_details' };
const RESPONSES_USAGE_FIELDS: UsageFields = { input: 'input_tokens', output: 'output_tokens', inputDetails: 'input_tokens_details', outputDetails: 'output_tokens_details' };

/** OpenAI's chat usage object, as the ledger wants it. */
export const chatUsage = (usage: unknown): UpstreamUsage | null => readUsage(usage, CHAT_USAGE_FIELDS);

/** The Responses API usage object, as the ledger wants it. */
export const responsesUsage = (usage: unknown): UpstreamUsage | null => readUsage(usage, RESPONSES_USAGE_FIELDS);

/** The embeddings usage object (`prompt_tokens`; embeddings produce no output tokens). */
export function embeddingsUsage(usage: unknown): UpstreamUsage | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const prompt = usageCount((usage as { prompt_tokens?: unknown }).prompt_tokens);
  if (prompt === undefined || prompt === null) return null;
  return { inputTokens: prompt, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0 };
}
