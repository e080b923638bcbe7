import { describe, expect, it } from 'vitest';
import { NO_COUNTS, type RateCheck, type RateCounts, type RateLimit } from '../quota/rate-limits.js';
import { RateLimiter, rateLimitHeaders } from './rate-limiter.js';

const T = Date.parse('2026-11-22T12:00:00Z');

const check = (kind: 'key' | 'user' | 'project', limit: RateLimit, counts: Partial<RateCounts> = {}): RateCheck => ({
  scope: { kind, id: kind === 'key' ? 'key_a' : 'alice' },
  limit,
  counts: { ...NO_COUNTS, ...counts },
});

describe('RateLimiter', () => {
  it('sends the config’s limits with every reservation, even none (an admin may have set some), and what tokens per minute count', () => {
    expect(new RateLimiter({}).request(1_234)).toEqual({ limits: {}, tokens: 1_234 });
    expect(new RateLimiter({ key: { maxConcurrent: 2 } }).request(10, true)).toEqual({ limits: { key: { maxConcurrent: 2 } }, tokens: 10, alreadyCounted: true });
  });
});

describe('rateLimitHeaders', () => {
  it('reports requests left in the window and when it resets, as OpenAI does', () => {
    expect(rateLimitHeaders([check('key', { requestsPerMinute: 2 }, { requestsMinute: 2 })], T + 1_000)).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '59s',
    });
  });

  it('reports tokens left this minute, less what a refused request would have needed', () => {
    const tokens = [check('user', { tokensPerMinute: 1_000 }, { tokensMinute: 600 })];
    expect(rateLimitHeaders(tokens, T)).toEqual({ 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '400', 'x-ratelimit-reset-tokens': '1m0s' });
    expect(rateLimitHeaders(tokens, T, 500)['x-ratelimit-remaining-tokens']).toBe('0');
  });

  it('of several limits, reports the one with the fewest left, across scopes and windows; in flight has no header', () => {
    const checks = [check('key', { requestsPerMinute: 5, maxConcurrent: 1 }, { requestsMinute: 1, concurrent: 1 }), check('user', { requestsPerMinute: 3, requestsPerDay: 100 }, { requestsMinute: 1, requestsDay: 99 })];
    expect(rateLimitHeaders(checks, T + 90_000)).toEqual({
      'x-ratelimit-limit-requests': '100',
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '718m30s',
    });
    expect(rateLimitHeaders([check('key', { maxConcurrent: 1 })], T)).toEqual({});
    expect(rateLimitHeaders([], T)).toEqual({});
  });
});
