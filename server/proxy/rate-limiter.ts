import type { RequestSubject } from '../quota/scope.js';

export interface RateLimit {
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
}

export interface RateLimits {
  key?: RateLimit | undefined;
  user?: RateLimit | undefined;
}

interface Window {
  start: number;
  requests: number;
  tokens: number;
}

export type RateDecision =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; scope: 'key' | 'user'; kind: 'requests' | 'tokens'; limit: number; retryAfterSeconds: number; headers: Record<string, string> };

const MINUTE = 60_000;

/** OpenAI's duration format for reset headers: "1s", "6m0s", "1.5s". */
const duration = (ms: number): string => {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 60) return `${Number(seconds.toFixed(3))}s`;
  return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
};

/**
 * Requests and tokens per minute, per key and per user, in fixed one-minute windows kept in memory.
 * Tokens are what admission sets aside (prompt plus output allowance), as OpenAI's own limiter
 * counts max_tokens. A request is counted only when every limit lets it through.
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly limits: RateLimits) {}

  get enabled(): boolean {
    return [this.limits.key, this.limits.user].some((l) => l?.requestsPerMinute !== undefined || l?.tokensPerMinute !== undefined);
  }

  take(subject: RequestSubject, tokens: number, now: number): RateDecision {
    const checks: Array<{ scope: 'key' | 'user'; limit: RateLimit; window: Window }> = [];
    for (const scope of ['key', 'user'] as const) {
      const limit = this.limits[scope];
      if (!limit || (limit.requestsPerMinute === undefined && limit.tokensPerMinute === undefined)) continue;
      checks.push({ scope, limit, window: this.window(`${scope}:${scope === 'key' ? subject.keyId : subject.userId}`, now) });
    }
    const headers = this.headers(checks, tokens, now);
    for (const { scope, limit, window } of checks) {
      const retryAfterSeconds = Math.max(1, Math.ceil((window.start + MINUTE - now) / 1000));
      if (limit.requestsPerMinute !== undefined && window.requests + 1 > limit.requestsPerMinute) {
        return { ok: false, scope, kind: 'requests', limit: limit.requestsPerMinute, retryAfterSeconds, headers };
      }
      if (limit.tokensPerMinute !== undefined && window.tokens + tokens > limit.tokensPerMinute) {
        return { ok: false, scope, kind: 'tokens', limit: limit.tokensPerMinute, retryAfterSeconds, headers };
      }
    }
    for (const { window } of checks) {
      window.requests += 1;
      window.tokens += tokens;
    }
    return { ok: true, headers: this.headers(checks, 0, now) };
  }

  private window(id: string, now: number): Window {
    const start = Math.floor(now / MINUTE) * MINUTE;
    let window = this.windows.get(id);
    if (!window || window.start !== start) {
      if (this.windows.size > 100_000) this.windows.clear();
      window = { start, requests: 0, tokens: 0 };
      this.windows.set(id, window);
    }
    return window;
  }

  /** The x-ratelimit-* headers of the tightest limits, as OpenAI sends them. */
  private headers(checks: Array<{ limit: RateLimit; window: Window }>, pendingTokens: number, now: number): Record<string, string> {
    const headers: Record<string, string> = {};
    let requests: { limit: number; remaining: number; reset: number } | undefined;
    let tokens: { limit: number; remaining: number; reset: number } | undefined;
    for (const { limit, window } of checks) {
      const reset = window.start + MINUTE - now;
      if (limit.requestsPerMinute !== undefined) {
        const remaining = Math.max(0, limit.requestsPerMinute - window.requests);
        if (!requests || remaining < requests.remaining) requests = { limit: limit.requestsPerMinute, remaining, reset };
      }
      if (limit.tokensPerMinute !== undefined) {
        const remaining = Math.max(0, limit.tokensPerMinute - window.tokens - pendingTokens);
        if (!tokens || remaining < tokens.remaining) tokens = { limit: limit.tokensPerMinute, remaining, reset };
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
}
