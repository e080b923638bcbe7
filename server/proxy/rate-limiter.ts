import type { RateLimitsConfig } from '../config/schema.js';
import { RATE_SPANS, spanStart, type RateCheck, type RateLimit, type RateSpan } from '../quota/rate-limits.js';
import type { RateRequest } from '../store/types.js';

/** OpenAI's duration format for reset headers: "1s", "6m0s", "1.5s". */
const duration = (ms: number): string => {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 60) return `${Number(seconds.toFixed(3))}s`;
  return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
};

const REQUEST_LIMITS: ReadonlyArray<{ field: keyof RateLimit; span: RateSpan; count: 'requestsMinute' | 'requestsHour' | 'requestsDay' }> = [
  { field: 'requestsPerMinute', span: 'minute', count: 'requestsMinute' },
  { field: 'requestsPerHour', span: 'hour', count: 'requestsHour' },
  { field: 'requestsPerDay', span: 'day', count: 'requestsDay' },
];

/**
 * The proxy's side of the rate limits (`rateLimits`): the store counts and decides them in its
 * atomic admission (see ReserveRequest.rates), so that every instance on one database shares them;
 * this sends the config's limits with each reservation and turns what the store read into OpenAI's
 * x-ratelimit-* headers.
 */
export class RateLimiter {
  constructor(private readonly limits: RateLimitsConfig) {}

  /**
   * What the store checks for a request setting aside `tokens` (its prompt plus the output it asks
   * for, as OpenAI's own limiter counts max_tokens). Always sent: an admin may have limited the
   * request's key, user or project even when the config limits none.
   */
  request(tokens: number, alreadyCounted = false): RateRequest {
    return { limits: this.limits, tokens, ...(alreadyCounted ? { alreadyCounted } : {}) };
  }
}

/**
 * The x-ratelimit-* headers of the tightest limits, as OpenAI sends them: of requests (per minute,
 * hour or day) the one with the fewest left, and tokens per minute. `counts` as they stand for the
 * answer: after the request was counted when admitted, before it otherwise (with its own tokens as
 * `pendingTokens`, which a refused request would have needed).
 */
export function rateLimitHeaders(checks: readonly RateCheck[], now: number, pendingTokens = 0): Record<string, string> {
  const headers: Record<string, string> = {};
  let requests: { limit: number; remaining: number; reset: number } | undefined;
  let tokens: { limit: number; remaining: number; reset: number } | undefined;
  for (const { limit, counts } of checks) {
    for (const { field, span, count } of REQUEST_LIMITS) {
      const max = limit[field];
      if (max === undefined) continue;
      const remaining = Math.max(0, max - counts[count]);
      if (!requests || remaining < requests.remaining) requests = { limit: max, remaining, reset: resetIn(span, now) };
    }
    if (limit.tokensPerMinute !== undefined) {
      const remaining = Math.max(0, limit.tokensPerMinute - counts.tokensMinute - pendingTokens);
      if (!tokens || remaining < tokens.remaining) tokens = { limit: limit.tokensPerMinute, remaining, reset: resetIn('minute', now) };
    }
  }
  if (requests) {
    headers['x-ratelimit-limit-requests'] = String(requests.limit);
    headers['x-ratelimit-remaining-requests'] = String(requests.remaining);
    headers['x-ratelimit-reset-requests'] = duration(requests.reset);
  }
  if (tokens) {
    headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
    headers['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    headers['x-ratelimit-reset-tokens'] = duration(tokens.reset);
  }
  return headers;
}

const resetIn = (span: RateSpan, now: number): number => spanStart(span, now) + RATE_SPANS[span] - now;
