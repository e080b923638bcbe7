import { expect } from 'vitest';
import type { DefaultBudget } from '../../config/schema.js';
import type { RequestSubject, Scope } from '../../quota/scope.js';
import type { Store, Usage } from '../types.js';

/** The hold TTL of the store tests. */
export const TTL = 60_000;

/** Upstream-reported usage of gpt-4o-mini. */
export const usage = (inputTokens: number, outputTokens: number, costMicros = 0): Usage => ({
  model: 'gpt-4o-mini',
  inputTokens,
  outputTokens,
  cachedTokens: 0,
  reasoningTokens: 0,
  costMicros,
  source: 'upstream',
  outcome: 'ok',
  latencyMs: 12,
  sessionId: null,
  tags: {},
});

/** A subject's key, user and global scopes (no project). */
export const userScopes = (s: RequestSubject): Scope[] => [
  { kind: 'key', id: s.keyId },
  { kind: 'user', id: s.userId },
  { kind: 'global' },
];

/** A default budget of `limitTokens` a calendar month for every subject of `scope`. */
export const monthlyTokens = (scope: DefaultBudget['scope'], limitTokens: number, timeZone = 'UTC'): DefaultBudget => ({
  scope,
  window: { kind: 'month', timeZone },
  limitTokens,
  limitUsd: null,
  onLimit: 'reject',
});

export const monthlyUserTokens = (limitTokens: number, timeZone = 'UTC'): DefaultBudget => monthlyTokens('user', limitTokens, timeZone);

/** Reserves and settles one request of `tokens` (all output) at `now`. */
export async function spend(store: Store, subject: RequestSubject, id: string, tokens: number, now: number) {
  const held = await store.reserve({ holdId: id, subject, quote: { tokens, micros: 0 }, now, ttlMs: TTL });
  expect(held.ok).toBe(true);
  return store.settle({ holdId: id, subject, usage: usage(0, tokens), now });
}
