import { describe, expect, it } from 'vitest';
import { CACHE_PROFILES } from './cache-profiles.js';
import { canonicalRequest, cacheScopeId } from './canonical-request.js';

const alice = { userId: 'alice', projectId: 'research', keyId: 'key_a' };
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], temperature: 0, tools: [{ type: 'function', function: { name: 'f', parameters: { b: 1, a: 2 } } }] };
const canonical = (overrides: Partial<Parameters<typeof canonicalRequest>[0]> = {}) =>
  canonicalRequest({ api: 'chat', scopeId: 'user:alice', streaming: false, body, ignoredFields: CACHE_PROFILES.chat?.ignoredFields ?? [], ...overrides }).toString();

describe('canonicalRequest', () => {
  it('is one text for one request, whatever the order of its keys at any depth', () => {
    const reordered = { tools: [{ function: { parameters: { a: 2, b: 1 }, name: 'f' }, type: 'function' }], temperature: 0, messages: [{ content: 'Hi', role: 'user' }], model: 'gpt-4o-mini' };
    expect(canonical({ body: reordered })).toBe(canonical());
  });

  it('leaves out only the fields that do not shape the answer', () => {
    expect(canonical({ body: { ...body, user: 'someone', metadata: { run: '7' }, safety_identifier: 'x', prompt_cache_key: 'k' } })).toBe(canonical());
    expect(canonical({ body: { ...body, stream_options: { include_usage: true } } })).not.toBe(canonical());
    expect(canonical({ body: { ...body, temperature: 0.1 } })).not.toBe(canonical());
    expect(canonical({ body: { ...body, messages: [{ role: 'user', content: 'Hi!' }] } })).not.toBe(canonical());
  });

  it('reads a stream from the flag alone: the body\'s `stream` field, given or not, changes nothing else', () => {
    expect(canonical({ body: { ...body, stream: false } })).toBe(canonical());
    expect(canonical({ body: { ...body, stream: true }, streaming: true })).toBe(canonical({ streaming: true }));
  });

  it('tells apart the API, the payer, and a stream from a whole answer', () => {
    expect(canonical({ api: 'responses' })).not.toBe(canonical());
    expect(canonical({ scopeId: 'user:bob' })).not.toBe(canonical());
    expect(canonical({ streaming: true })).not.toBe(canonical());
  });

  it('tells apart the headers the API forwards upstream (Anthropic\'s version and beta flags), whatever their case', () => {
    const messages = (headers?: Record<string, string>) => canonical({ api: 'messages', headers });
    expect(messages({})).toBe(messages());
    expect(messages({ 'anthropic-beta': 'context-1m-2025-08-07' })).not.toBe(messages());
    expect(messages({ 'anthropic-beta': 'context-1m-2025-08-07' })).not.toBe(messages({ 'anthropic-beta': 'interleaved-thinking-2025-05-14' }));
    expect(messages({ 'Anthropic-Version': '2023-06-01' })).toBe(messages({ 'anthropic-version': '2023-06-01' }));
  });
});

describe('cacheScopeId', () => {
  it.each([
    ['user', alice, 'user:alice'],
    ['key', alice, 'key:key_a/user:alice'],
    ['project', alice, 'project:research'],
    ['project', { ...alice, projectId: null }, 'user:alice'],
  ] as const)('%s scope of %o: %s', (scope, subject, id) => {
    expect(cacheScopeId(scope, subject)).toBe(id);
  });
});
