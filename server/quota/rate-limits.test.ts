import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresTestSchema, TEST_DATABASE_URL } from '../store/testing/store-kinds.js';
import { quoteIdent } from '../store/postgres/pg-pool.js';
import { decideRates, effectiveLimit, NO_COUNTS, type RateCheck, type RateCounts, type RateLimit, type RateLimited } from './rate-limits.js';

const T = Date.parse('2026-11-22T12:00:00Z');

const check = (kind: 'key' | 'user' | 'project', limit: RateLimit, counts: Partial<RateCounts> = {}): RateCheck => ({
  scope: { kind, id: kind === 'key' ? 'key_a' : kind === 'user' ? 'alice' : 'research' },
  limit,
  counts: { ...NO_COUNTS, ...counts },
});

/** One table for decideRates and its PL/pgSQL twin lq_rate_decide: [what, checks, tokens, now, alreadyCounted, refused by]. */
const CASES: Array<[string, RateCheck[], number, number, boolean, Omit<RateLimited, 'scope'> & { scope: string } | null]> = [
  ['no checks', [], 100, T, false, null],
  ['under every limit', [check('key', { requestsPerMinute: 2, tokensPerMinute: 100, maxConcurrent: 1 }, { requestsMinute: 1, tokensMinute: 50 })], 50, T, false, null],
  ['the last request of the minute fits', [check('key', { requestsPerMinute: 2 }, { requestsMinute: 1 })], 0, T + 59_999, false, null],
  ['one request over the minute', [check('key', { requestsPerMinute: 2 }, { requestsMinute: 2 })], 0, T + 20_500, false, { scope: 'key:key_a', field: 'requestsPerMinute', limit: 2, retryAfterMs: 39_500 }],
  ['tokens: exactly the limit fits', [check('user', { tokensPerMinute: 100 }, { tokensMinute: 60 })], 40, T, false, null],
  ['tokens: one over', [check('user', { tokensPerMinute: 100 }, { tokensMinute: 60 })], 41, T + 1, false, { scope: 'user:alice', field: 'tokensPerMinute', limit: 100, retryAfterMs: 59_999 }],
  ['an hour', [check('user', { requestsPerHour: 5 }, { requestsHour: 5 })], 0, T + 15 * 60_000, false, { scope: 'user:alice', field: 'requestsPerHour', limit: 5, retryAfterMs: 45 * 60_000 }],
  ['a UTC day', [check('project', { requestsPerDay: 5 }, { requestsDay: 5 })], 0, T, false, { scope: 'project:research', field: 'requestsPerDay', limit: 5, retryAfterMs: 12 * 3_600_000 }],
  ['in flight: a second', [check('user', { maxConcurrent: 2 }, { concurrent: 2 })], 0, T, false, { scope: 'user:alice', field: 'maxConcurrent', limit: 2, retryAfterMs: 1_000 }],
  [
    'the longest wait of several is named',
    [check('key', { requestsPerMinute: 1, maxConcurrent: 1 }, { requestsMinute: 1, concurrent: 1 }), check('user', { requestsPerDay: 3 }, { requestsDay: 3 }), check('project', { requestsPerHour: 1 }, { requestsHour: 1 })],
    0,
    T,
    false,
    { scope: 'user:alice', field: 'requestsPerDay', limit: 3, retryAfterMs: 12 * 3_600_000 },
  ],
  ['equal waits: the first is named', [check('key', { requestsPerMinute: 1 }, { requestsMinute: 1 }), check('user', { tokensPerMinute: 1 })], 5, T, false, { scope: 'key:key_a', field: 'requestsPerMinute', limit: 1, retryAfterMs: 60_000 }],
  ['already counted: the windows are not checked', [check('key', { requestsPerMinute: 1, tokensPerMinute: 1, requestsPerDay: 1 }, { requestsMinute: 1, tokensMinute: 1, requestsDay: 1 })], 10, T, true, null],
  ['already counted: in flight still is', [check('key', { requestsPerMinute: 1, maxConcurrent: 1 }, { requestsMinute: 5, concurrent: 1 })], 10, T, true, { scope: 'key:key_a', field: 'maxConcurrent', limit: 1, retryAfterMs: 1_000 }],
];

const named = (r: RateLimited | null) => r && { ...r, scope: `${r.scope.kind}:${r.scope.id}` };

describe('decideRates', () => {
  it.each(CASES)('%s', (_what, checks, tokens, now, already, refused) => {
    expect(named(decideRates(checks, tokens, now, already))).toEqual(refused);
  });
});

describe('lq_rate_decide, its PL/pgSQL twin, on the same table', () => {
  const schema = postgresTestSchema();
  it('answers as decideRates does for every case', async () => {
    await schema.open(); // migrates the test schema
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(`SET search_path TO ${quoteIdent(schema.schema)}`);
      for (const [what, checks, tokens, now, already, refused] of CASES) {
        const { rows } = await client.query<{ r: RateLimited | null }>('SELECT lq_rate_decide($1::jsonb, $2, $3, $4) AS r', [JSON.stringify(checks), tokens, now, already]);
        expect(named(rows[0]?.r ?? null), what).toEqual(refused);
      }
    } finally {
      await client.end();
    }
  });
});

describe('effectiveLimit', () => {
  it('takes the config’s limits of the kind, with the subject’s fields over them: null lifts one, absent keeps it', () => {
    expect(effectiveLimit(undefined, undefined)).toEqual({});
    expect(effectiveLimit({ requestsPerMinute: 60, maxConcurrent: 4 }, undefined)).toEqual({ requestsPerMinute: 60, maxConcurrent: 4 });
    expect(effectiveLimit({ requestsPerMinute: 60, maxConcurrent: 4 }, { maxConcurrent: null, requestsPerDay: 500 })).toEqual({ requestsPerMinute: 60, requestsPerDay: 500 });
    expect(effectiveLimit(undefined, { tokensPerMinute: 1_000 })).toEqual({ tokensPerMinute: 1_000 });
  });
});
