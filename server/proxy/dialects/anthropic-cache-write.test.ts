import { describe, expect, it } from 'vitest';
import { promptRate } from '../meter.js';
import { messagesRequestSchema, promptCacheWriteOf } from './anthropic-messages.js';

const request = (fields: object) => messagesRequestSchema.parse({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...fields });
const marked = (ttl?: string) => ({ type: 'ephemeral', ...(ttl ? { ttl } : {}) });

describe('promptCacheWriteOf: how long a Messages request asks its prompt to be cached', () => {
  it.each<[string, object, string | undefined]>([
    ['nothing marked', {}, undefined],
    ['the system prompt, for 5 minutes (LobeChat marks it on every request)', { system: [{ type: 'text', text: 'be terse', cache_control: marked() }] }, '5m'],
    ['a message block, for an hour', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: marked('1h') }] }] }, '1h'],
    ['a tool', { tools: [{ name: 'x', input_schema: { type: 'object' }, cache_control: marked() }] }, '5m'],
    ['the request itself', { cache_control: marked('1h') }, '1h'],
    ['an hour anywhere wins over 5 minutes', { system: [{ type: 'text', text: 'a', cache_control: marked('1h') }], tools: [{ name: 'x', cache_control: marked() }] }, '1h'],
    ['a plain-string system prompt marks nothing', { system: 'be terse' }, undefined],
  ])('%s', (_what, fields, expected) => {
    expect(promptCacheWriteOf(request(fields))).toBe(expected);
  });
});

describe('promptRate: the most a prompt token may be billed at', () => {
  const sonnet = { inputMicrosPerMillion: 3_000_000, cachedInputMicrosPerMillion: 300_000, outputMicrosPerMillion: 15_000_000, cacheWriteMicrosPerMillion: 3_750_000, cacheWrite1hMicrosPerMillion: 6_000_000 };
  it('is the input price, or the write price of the longest write asked for', () => {
    expect(promptRate(sonnet, undefined)).toBe(3_000_000);
    expect(promptRate(sonnet, '5m')).toBe(3_750_000);
    expect(promptRate(sonnet, '1h')).toBe(6_000_000);
  });
  it('falls back to the 5-minute price, then the input price, and is never below the input price', () => {
    const { cacheWrite1hMicrosPerMillion: _1h, ...noHour } = sonnet;
    expect(promptRate(noHour, '1h')).toBe(3_750_000);
    expect(promptRate({ inputMicrosPerMillion: 2, cachedInputMicrosPerMillion: 1, outputMicrosPerMillion: 4 }, '1h')).toBe(2);
    expect(promptRate({ ...sonnet, cacheWriteMicrosPerMillion: 1 }, '5m')).toBe(3_000_000);
  });
});
