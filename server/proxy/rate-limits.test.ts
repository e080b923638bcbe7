import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startAnthropicProxy } from '../testing/anthropic-harness.js';
import { eventually, T0 } from '../testing/harness.js';
import { startProxy } from '../testing/proxy-harness.js';

/** Request and concurrency limits through the official SDKs against the real server (SQLite). */

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const ask = (content: string) => [{ role: 'user' as const, content }];

describe('requests in flight (maxConcurrent)', () => {
  it('two streams held open of five started at once: the other three get 429 rate_limit_exceeded with Retry-After, and a closed stream makes room', async () => {
    const proxy = await startProxy({ config: { rateLimits: { user: { maxConcurrent: 2 } } } });
    stops.push(() => proxy.close());
    // Each admitted stream sends its first chunk, then waits a minute: open until its client leaves.
    proxy.fake.enqueue(...Array.from({ length: 5 }, () => ({ kind: 'reply' as const, outputTokens: 3, chunkDelayMs: 60_000 })));
    const client = proxy.client(proxy.alice.secret);
    const aborts = Array.from({ length: 5 }, () => new AbortController());
    const started = await Promise.allSettled(
      aborts.map((abort, i) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask(`story ${i}`), stream: true }, { signal: abort.signal })),
    );
    const open = started.filter((s) => s.status === 'fulfilled');
    const refused = started.flatMap((s) => (s.status === 'rejected' ? [s.reason as InstanceType<typeof OpenAI.RateLimitError>] : []));
    expect(open).toHaveLength(2);
    expect(refused).toHaveLength(3);
    for (const error of refused) {
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(error.code).toBe('rate_limit_exceeded');
      expect(error.type).toBe('requests');
      expect(error.message).toBe('429 Rate limit reached for this user: 2 requests in flight at a time. Try again in 1s.');
      expect(error.headers?.get('retry-after')).toBe('1');
    }
    expect(proxy.fake.requests).toHaveLength(2);
    expect(await proxy.svc.store.listHolds()).toHaveLength(2);

    // One client leaves: its hold goes, and the next request gets in.
    aborts.forEach((abort, i) => started[i]?.status === 'fulfilled' && abort.abort());
    await eventually(async () => (await proxy.svc.store.listHolds()).length === 0, 5_000, 'the holds of the left streams to go');
    const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('now') });
    expect(answer.choices[0]?.finish_reason).toBe('stop');
  });
});

describe('requests per minute', () => {
  it('counts in fixed UTC minutes on the server’s clock: the third of the minute is refused until the minute ends, with OpenAI’s headers', async () => {
    const proxy = await startProxy({ config: { rateLimits: { key: { requestsPerMinute: 2, tokensPerMinute: 100_000 } } } });
    stops.push(() => proxy.close());
    proxy.svc.clock.set(T0 + 45_000);
    const client = proxy.client(proxy.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('1'), max_tokens: 100 });
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('2'), max_tokens: 100 }).withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(response.headers.get('x-ratelimit-reset-requests')).toBe('15s');
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(100_000 - 200);

    proxy.svc.clock.advance(10_000);
    const error = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('3') }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.message).toBe('429 Rate limit reached for this key: 2 requests per minute. Try again in 5s.');
    expect(error.headers?.get('retry-after')).toBe('5');
    expect(error.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(error.headers?.get('x-ratelimit-reset-requests')).toBe('5s');
    expect(proxy.fake.requests).toHaveLength(2);

    proxy.svc.clock.advance(5_000); // the next minute
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('4') });
    expect(proxy.fake.requests).toHaveLength(3);
    // A refusal answered as an error leaves no ledger entry.
    expect((await proxy.svc.store.recentEntries(10)).length).toBe(3);
  });

  it('an admin’s limit for one user, set over the API, applies from the next request; deleting it gives the config’s back', async () => {
    const proxy = await startProxy({ config: { rateLimits: { user: { requestsPerMinute: 100 } } } });
    stops.push(() => proxy.close());
    const client = proxy.client(proxy.alice.secret);
    const set = await proxy.svc.admin('PUT', '/admin/rate-limits', { scope: 'user:alice', requestsPerMinute: 1 });
    expect(set.status).toBe(201);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('1') });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('2') })).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect((await proxy.svc.admin('DELETE', '/admin/rate-limits/user:alice')).status).toBe(200);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('3') });
    expect(proxy.fake.requests).toHaveLength(2);
  });
});

describe('in each API’s shape', () => {
  it('Anthropic: a 429 rate_limit_error with Retry-After, through @anthropic-ai/sdk', async () => {
    const proxy = await startAnthropicProxy({ config: { rateLimits: { user: { requestsPerHour: 1 } } } });
    stops.push(() => proxy.close());
    proxy.svc.clock.set(T0 + 30 * 60_000);
    const client = proxy.client(proxy.alice.secret);
    await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 50, messages: ask('hi') });
    const error = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 50, messages: ask('again') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    const e = error as InstanceType<typeof Anthropic.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.error).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: 'Rate limit reached for this user: 1 requests per hour. Try again in 1800s.' } });
    expect(e.headers?.get('retry-after')).toBe('1800');
    expect(proxy.fake.requests).toHaveLength(1);
  });
});
