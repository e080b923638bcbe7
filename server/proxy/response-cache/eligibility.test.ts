import { describe, expect, it } from 'vitest';
import { CACHE_PROFILES } from './cache-profiles.js';
import { cacheHeaderOf, isCacheable, type CacheHeader } from './eligibility.js';

const on = { enabled: true };

describe('isCacheable', () => {
  it.each<[string, string, Record<string, unknown>, CacheHeader, boolean]>([
    ['temperature 0', 'chat', { temperature: 0 }, null, true],
    ['no temperature: the default (1) samples', 'chat', {}, null, false],
    ['no temperature, opted in', 'chat', {}, 'on', true],
    ['temperature 0.7', 'messages', { temperature: 0.7 }, null, false],
    ['temperature 0, bypassed', 'chat', { temperature: 0 }, 'off', false],
    ['Gemini temperature 0 in generationConfig', 'gemini', { generationConfig: { temperature: 0 } }, null, true],
    ['Gemini without generationConfig', 'gemini', {}, null, false],
    ['Ollama options.temperature 0', 'ollama-chat', { options: { temperature: 0 } }, null, true],
    ['Ollama default 0.8', 'ollama-generate', { options: {} }, null, false],
    ['embeddings never sample', 'embeddings', {}, null, true],
    ['embeddings, bypassed', 'embeddings', {}, 'off', false],
    ['a background Responses request is a placeholder', 'responses', { temperature: 0, background: true }, 'on', false],
    ['an API without a profile', 'count-tokens', { temperature: 0 }, 'on', false],
  ])('%s', (_label, api, body, header, cacheable) => {
    expect(isCacheable(on, CACHE_PROFILES[api], header, body)).toBe(cacheable);
  });

  it('never while the cache is off', () => {
    expect(isCacheable({ enabled: false }, CACHE_PROFILES.chat, 'on', { temperature: 0 })).toBe(false);
  });
});

describe('cacheHeaderOf', () => {
  it('reads on and off, in any case, and refuses anything else by name', () => {
    expect(cacheHeaderOf(undefined)).toBeNull();
    expect(cacheHeaderOf('ON')).toBe('on');
    expect(cacheHeaderOf(' off ')).toBe('off');
    expect(() => cacheHeaderOf('yes')).toThrow(/X-Quota-Cache/);
  });
});
