import { isRecord } from '../../util/is-record.js';
import type { UpstreamUsage } from '../meter.js';
import { usageCount } from '../usage-count.js';

/**
 * Anthropic's usage object in the ledger's terms. Anthropic splits the prompt into three disjoint
 * classes — `input_tokens` (neither read from nor written to the cache), `cache_read_input_tokens`
 * and `cache_creation_input_tokens` (written, split into 5-minute and 1-hour writes under
 * `cache_creation`) — where the ledger counts the whole prompt as input, of which some was read
 * and some written. Null when it carries neither input nor output, or any impossible count: the
 * request is then charged on our own count, as for an OpenAI answer without usage.
 */
export function anthropicUsage(usage: unknown): UpstreamUsage | null {
  if (!isRecord(usage)) return null;
  const uncached = usageCount(usage.input_tokens);
  const output = usageCount(usage.output_tokens);
  const read = usageCount(usage.cache_read_input_tokens);
  const written = usageCount(usage.cache_creation_input_tokens);
  const split = isRecord(usage.cache_creation) ? usage.cache_creation : {};
  const written5m = usageCount(split.ephemeral_5m_input_tokens);
  const written1h = usageCount(split.ephemeral_1h_input_tokens);
  if (uncached === undefined && output === undefined) return null;
  if ([uncached, output, read, written, written5m, written1h].includes(null)) return null;
  // The total of writes, when only the split was given; a 1-hour share never above the total.
  const writes = written ?? (written5m ?? 0) + (written1h ?? 0);
  return {
    inputTokens: (uncached ?? 0) + (read ?? 0) + writes,
    outputTokens: output ?? 0,
    cachedTokens: read ?? 0,
    reasoningTokens: 0,
    cacheWriteTokens: writes,
    cacheWrite1hTokens: Math.min(writes, written1h ?? 0),
  };
}

/**
 * A stream's usage, from its two sources: `message_start` carries the prompt's classes (and the
 * only 5-minute / 1-hour split), `message_delta` the cumulative output and — from newer API
 * versions — the prompt's classes again. The later report wins where it has a count; the split
 * comes from the start.
 */
export function mergeStreamUsage(start: Record<string, unknown> | null, delta: Record<string, unknown> | null): UpstreamUsage | null {
  if (start === null && delta === null) return null;
  const merged: Record<string, unknown> = { ...start };
  for (const [field, value] of Object.entries(delta ?? {})) if (value !== null && value !== undefined) merged[field] = value;
  if (start && isRecord(start.cache_creation)) merged.cache_creation = start.cache_creation;
  return anthropicUsage(merged);
}
