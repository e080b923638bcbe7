import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';

const alice = { userId: 'alice', projectId: null, keyId: 'key_a' };
const aliceOtherKey = { userId: 'alice', projectId: null, keyId: 'key_b' };
const T = Date.parse('2026-11-22T12:00:00Z');

describe('RateLimiter', () => {
  it('is off without limits', () => {
    expect(new RateLimiter({}).enabled).toBe(false);
    expect(new RateLimiter({ key: {} }).enabled).toBe(false);
    expect(new RateLimiter({ user: { tokensPerMinute: 5 } }).enabled).toBe(true);
  });

  it('counts requests per key in one-minute windows, and says when to retry', () => {
    const limiter = new RateLimiter({ key: { requestsPerMinute: 2 } });
    expect(limiter.take(alice, 0, T).ok).toBe(true);
    const second = limiter.take(alice, 0, T + 1_000);
    expect(second).toEqual({
      ok: true,
      headers: { 'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '59s' },
    });
    const third = limiter.take(alice, 0, T + 20_500);
    expect(third).toMatchObject({ ok: false, scope: 'key', kind: 'requests', limit: 2, retryAfterSeconds: 40 });
    // Another key of the same user has its own window; the next minute starts afresh.
    expect(limiter.take(aliceOtherKey, 0, T + 20_500).ok).toBe(true);
    expect(limiter.take(alice, 0, T + 60_000).ok).toBe(true);
  });

  it('counts tokens per user across keys, and a refused request uses nothing up', () => {
    const limiter = new RateLimiter({ user: { tokensPerMinute: 1_000 } });
    expect(limiter.take(alice, 600, T).ok).toBe(true);
    expect(limiter.take(aliceOtherKey, 500, T)).toMatchObject({ ok: false, scope: 'user', kind: 'tokens', limit: 1_000 });
    const fits = limiter.take(aliceOtherKey, 400, T);
    expect(fits).toEqual({
      ok: true,
      headers: { 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '1m0s' },
    });
  });

  it('checks every limit before counting: a request refused by the user limit does not use the key’s', () => {
    const limiter = new RateLimiter({ key: { requestsPerMinute: 5 }, user: { requestsPerMinute: 1 } });
    expect(limiter.take(alice, 0, T).ok).toBe(true);
    expect(limiter.take(alice, 0, T)).toMatchObject({ ok: false, scope: 'user' });
    const headers = limiter.take(aliceOtherKey, 0, T).headers;
    // The tighter of the two limits is reported.
    expect(headers['x-ratelimit-remaining-requests']).toBe('0');
  });
});
