import { describe, expect, it } from 'vitest';
import type { Refusal } from '../refusals.js';
import { openAIRefusalBody } from './openai-common.js';

const refused = { subject: { userId: 'alice', projectId: null, keyId: 'key_a' }, sessionId: null, tags: {} };

describe("refusals in OpenAI's shape (the bodies OpenAI itself sends, which the SDKs and LobeChat recognise)", () => {
  it.each<[string, Refusal, object]>([
    ['a budget', { kind: 'quota', status: 429, message: 'You exceeded your budget.', headers: {}, refused }, { type: 'insufficient_quota', code: 'insufficient_quota' }],
    ['a request rate', { kind: 'rate', limited: 'requests', status: 429, message: 'Rate limit reached.', headers: {}, refused }, { type: 'requests', code: 'rate_limit_exceeded' }],
    ['a token rate', { kind: 'rate', limited: 'tokens', status: 429, message: 'Rate limit reached.', headers: {}, refused }, { type: 'tokens', code: 'rate_limit_exceeded' }],
  ])('%s', (_what, refusal, typed) => {
    expect(openAIRefusalBody(refusal)).toEqual({ error: { message: refusal.message, ...typed, param: null } });
    // Field order as OpenAI's: message, type, param, code.
    expect(Object.keys((openAIRefusalBody(refusal) as { error: object }).error)).toEqual(['message', 'type', 'param', 'code']);
  });
});
