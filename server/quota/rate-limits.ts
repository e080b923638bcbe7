import { z } from 'zod';
import { scopeSchemaOf } from './scope.js';

/**
 * Request and concurrency limits (`rateLimits` in the config, and per subject over the admin API),
 * as pure values and one pure decision. The stores count and decide inside their admission step,
 * PostgreSQL with a PL/pgSQL twin of `decideRates` (see ../store/postgres/rate-limit-functions.ts)
 * that must answer the same for the same counts.
 */

/** The scopes a rate limit may apply to (a global one would be a budget's job). */
export const RATE_SCOPE_KINDS = ['key', 'user', 'project'] as const;
export type RateScopeKind = (typeof RATE_SCOPE_KINDS)[number];
export interface RateScope {
  kind: RateScopeKind;
  id: string;
}

/** In the order they are checked. */
export const RATE_LIMIT_FIELDS = ['requestsPerMinute', 'requestsPerHour', 'requestsPerDay', 'tokensPerMinute', 'maxConcurrent'] as const;
export type RateLimitField = (typeof RATE_LIMIT_FIELDS)[number];

/** One kind of scope's limits; a field absent is no limit. */
export type RateLimit = { [F in RateLimitField]?: number | undefined };

/** The config's `rateLimits`: the limits of every key, every user and every project. */
export type RateLimitsByKind = { [K in RateScopeKind]?: RateLimit | undefined };

/** An admin's limits for one subject: a field absent keeps the config's value, null lifts it. */
export type RateLimitOverride = { [F in RateLimitField]?: number | null };

export interface RateLimitSetting {
  scope: RateScope;
  limits: RateLimitOverride;
  updatedAt: number;
}

export const formatRateScope = (scope: RateScope): string => `${scope.kind}:${scope.id}`;

/** `key:ID`, `user:ID` or `project:ID`. */
export const rateScopeSchema = scopeSchemaOf(['key', 'user', 'project']);

const positive = z.number().int().min(1);

/** The config's limits of one kind of scope (every field optional, each a positive integer). */
export const rateLimitSchema = z.strictObject({
  requestsPerMinute: positive.optional().describe('requests a minute (fixed UTC minutes)'),
  requestsPerHour: positive.optional().describe('requests an hour (fixed UTC hours)'),
  requestsPerDay: positive.optional().describe('requests a day (fixed UTC days)'),
  tokensPerMinute: positive.optional().describe('tokens a minute, as admission sets them aside: the prompt plus the output asked for'),
  maxConcurrent: positive.optional().describe('requests in flight at once'),
});

/** An override's fields: a positive integer, or null for no limit (absent: the config's). */
export const rateLimitOverrideShape = {
  requestsPerMinute: positive.nullable().optional(),
  requestsPerHour: positive.nullable().optional(),
  requestsPerDay: positive.nullable().optional(),
  tokensPerMinute: positive.nullable().optional(),
  maxConcurrent: positive.nullable().optional(),
};

/** The limits in force for one subject: the config's for its kind, with the admin's override on top. */
export function effectiveLimit(config: RateLimit | undefined, override: RateLimitOverride | undefined): RateLimit {
  const limit: RateLimit = {};
  for (const field of RATE_LIMIT_FIELDS) {
    const value = override !== undefined && field in override ? override[field] : config?.[field];
    if (value !== undefined && value !== null) limit[field] = value;
  }
  return limit;
}

/** Fixed windows aligned on UTC (a day is a UTC day), so every instance agrees on them. */
export const RATE_SPANS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type RateSpan = keyof typeof RATE_SPANS;

export const spanStart = (span: RateSpan, now: number): number => Math.floor(now / RATE_SPANS[span]) * RATE_SPANS[span];

/** The window each per-time field counts in. */
const SPAN_OF: Record<Exclude<RateLimitField, 'maxConcurrent'>, RateSpan> = {
  requestsPerMinute: 'minute',
  requestsPerHour: 'hour',
  requestsPerDay: 'day',
  tokensPerMinute: 'minute',
};

/** The windows a limit needs counted: only those with a limit, so a subject without any costs nothing. */
export function countedSpans(limit: RateLimit): RateSpan[] {
  const spans = new Set<RateSpan>();
  for (const field of RATE_LIMIT_FIELDS) if (field !== 'maxConcurrent' && limit[field] !== undefined) spans.add(SPAN_OF[field]);
  return (['minute', 'hour', 'day'] as const).filter((s) => spans.has(s));
}

/** A subject's counts in the windows at one instant (0 in a window not counted). */
export interface RateCounts {
  requestsMinute: number;
  requestsHour: number;
  requestsDay: number;
  tokensMinute: number;
  /** Its live holds. */
  concurrent: number;
}

export const NO_COUNTS: Readonly<RateCounts> = Object.freeze({ requestsMinute: 0, requestsHour: 0, requestsDay: 0, tokensMinute: 0, concurrent: 0 });

/** One scope of a request: the limits in force, and the counts before this request. */
export interface RateCheck {
  scope: RateScope;
  limit: RateLimit;
  counts: RateCounts;
}

/** Which limit refused a request, and when trying again makes sense. */
export interface RateLimited {
  scope: RateScope;
  field: RateLimitField;
  limit: number;
  retryAfterMs: number;
}

/** A request in flight ends at no known time: the client is told to try again in a second. */
export const CONCURRENCY_RETRY_MS = 1_000;

/**
 * Whether one more request (setting aside `tokens`) fits every limit. Of several limits that refuse
 * it, the one that lasts longest is named: trying again earlier would be refused by it anyway. A
 * request `alreadyCounted` (the same client request admitted again, on another upstream) is checked
 * against requests in flight only.
 */
export function decideRates(checks: readonly RateCheck[], tokens: number, now: number, alreadyCounted: boolean): RateLimited | null {
  let refused: RateLimited | null = null;
  for (const { scope, limit, counts } of checks) {
    for (const field of RATE_LIMIT_FIELDS) {
      const max = limit[field];
      if (max === undefined || (alreadyCounted && field !== 'maxConcurrent')) continue;
      const over = field === 'tokensPerMinute' ? counts.tokensMinute + tokens > max : countOf(counts, field) + 1 > max;
      if (!over) continue;
      const retryAfterMs = field === 'maxConcurrent' ? CONCURRENCY_RETRY_MS : spanStart(SPAN_OF[field], now) + RATE_SPANS[SPAN_OF[field]] - now;
      if (refused === null || retryAfterMs > refused.retryAfterMs) refused = { scope, field, limit: max, retryAfterMs };
    }
  }
  return refused;
}

function countOf(counts: RateCounts, field: Exclude<RateLimitField, 'tokensPerMinute'>): number {
  switch (field) {
    case 'requestsPerMinute':
      return counts.requestsMinute;
    case 'requestsPerHour':
      return counts.requestsHour;
    case 'requestsPerDay':
      return counts.requestsDay;
    case 'maxConcurrent':
      return counts.concurrent;
  }
}

/** The counts once an admitted request is counted (its hold is one more in flight either way). */
export function countedOnce(counts: RateCounts, tokens: number, alreadyCounted: boolean): RateCounts {
  if (alreadyCounted) return { ...counts, concurrent: counts.concurrent + 1 };
  return {
    requestsMinute: counts.requestsMinute + 1,
    requestsHour: counts.requestsHour + 1,
    requestsDay: counts.requestsDay + 1,
    tokensMinute: counts.tokensMinute + tokens,
    concurrent: counts.concurrent + 1,
  };
}

/** The scopes of a request that rate limits apply to, narrowest first. */
export function rateScopesOf(subject: { keyId: string; userId: string; projectId: string | null }): RateScope[] {
  const scopes: RateScope[] = [
    { kind: 'key', id: subject.keyId },
    { kind: 'user', id: subject.userId },
  ];
  if (subject.projectId !== null) scopes.push({ kind: 'project', id: subject.projectId });
  return scopes;
}
