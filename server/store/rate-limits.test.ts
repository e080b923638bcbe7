import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RateLimitsByKind } from '../quota/rate-limits.js';
import type { RequestSubject } from '../quota/scope.js';
import { T0, userWithKey } from '../testing/harness.js';
import { monthlyUserTokens, TTL, usage } from './testing/store-fixtures.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { storeKinds } from './testing/store-kinds.js';
import type { ReserveResult, Store } from './types.js';

/** The same suite for SQLite and PostgreSQL (on PostgreSQL, lq_rate_decide is checked against decideRates on every call). */
const kinds = storeKinds();

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

let n = 0;
/** One request of `tokens` for the rate limits (a hold of 1 token for the budgets). */
const ask = (store: Store, subject: RequestSubject, limits: RateLimitsByKind, now: number, extra: { tokens?: number; alreadyCounted?: boolean; quote?: number; id?: string } = {}) =>
  store.reserve({
    holdId: extra.id ?? `r${++n}`,
    subject,
    quote: { tokens: extra.quote ?? 1, micros: 0 },
    now,
    ttlMs: TTL,
    rates: { limits, tokens: extra.tokens ?? 10, ...(extra.alreadyCounted === undefined ? {} : { alreadyCounted: extra.alreadyCounted }) },
  });

/** What refused it: "user:alice requestsPerMinute 2 after 30000 ms", or "ok" / "budget". */
const verdict = (r: ReserveResult): string => {
  if (r.ok) return 'ok';
  if ('rateLimited' in r) return `${r.rateLimited.scope.kind}:${r.rateLimited.scope.id} ${r.rateLimited.field} ${r.rateLimited.limit} after ${r.rateLimited.retryAfterMs} ms`;
  return 'budget';
};

describe.each(kinds)('$name store: rate limits', ({ open }) => {
  it('requests per minute: fixed UTC minutes, the refused request named with the wait to the minute’s end, and a new minute starts over', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const limits = { key: { requestsPerMinute: 2 } };
    const at = T0 + 30_000; // half way through a minute
    expect(verdict(await ask(store, subject, limits, at))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, at + 1_000))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, at + 2_000))).toBe(`key:${subject.keyId} requestsPerMinute 2 after 28000 ms`);
    expect(verdict(await ask(store, subject, limits, T0 + MINUTE))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0 + MINUTE + 59_999))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0 + MINUTE + 59_999))).toMatch(/requestsPerMinute 2 after 1 ms$/);
    // Holds are not what the window counts: releasing them gives nothing back.
    for (const hold of await store.listHolds()) await store.release(hold.id);
    expect(verdict(await ask(store, subject, limits, T0 + MINUTE + 59_999))).toMatch(/requestsPerMinute/);
  });

  it('requests per hour and per day roll over at the UTC hour and midnight; of two limits refusing, the one lasting longer is named', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const limits = { user: { requestsPerHour: 2, requestsPerDay: 3 } };
    expect(verdict(await ask(store, subject, limits, T0))).toBe('ok'); // 12:00 UTC
    expect(verdict(await ask(store, subject, limits, T0 + 10 * MINUTE))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0 + 20 * MINUTE))).toBe(`user:alice requestsPerHour 2 after ${40 * MINUTE} ms`);
    expect(verdict(await ask(store, subject, limits, T0 + HOUR))).toBe('ok'); // 13:00: a new hour, the day's third
    expect(verdict(await ask(store, subject, limits, T0 + 2 * HOUR))).toBe(`user:alice requestsPerDay 3 after ${10 * HOUR} ms`);
    expect(verdict(await ask(store, subject, limits, T0 + 12 * HOUR))).toBe('ok'); // midnight UTC

    // Both refuse bob's second request: the day's wait is the longer, and is the one named.
    const bob = (await userWithKey(store, 'bob')).subject;
    const once = { user: { requestsPerHour: 1, requestsPerDay: 1 } };
    expect(verdict(await ask(store, bob, once, T0))).toBe('ok');
    expect(verdict(await ask(store, bob, once, T0 + MINUTE))).toBe(`user:bob requestsPerDay 1 after ${12 * HOUR - MINUTE} ms`);
  });

  it('tokens per minute count what the request sets aside (its `tokens`), not what it is later charged', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const limits = { user: { tokensPerMinute: 250 } };
    const first = await ask(store, subject, limits, T0, { tokens: 100, id: 'a' });
    expect(verdict(first)).toBe('ok');
    await store.settle({ holdId: 'a', subject, usage: usage(5, 5), now: T0 });
    expect(verdict(await ask(store, subject, limits, T0, { tokens: 100 }))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0, { tokens: 51 }))).toBe(`user:alice tokensPerMinute 250 after ${MINUTE} ms`);
    expect(verdict(await ask(store, subject, limits, T0, { tokens: 50 }))).toBe('ok');
  });

  it('requests in flight: the live holds of the scope; a hold settled, released or expired makes room, and an extension is no new request', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice', 'research');
    const limits = { project: { maxConcurrent: 2 }, key: { requestsPerMinute: 4 } };
    expect(verdict(await ask(store, subject, limits, T0, { id: 'a' }))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0, { id: 'b' }))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0))).toBe('project:research maxConcurrent 2 after 1000 ms');
    expect((await store.extend('a', { tokens: 5, micros: 0 }, T0, TTL, 5)).ok).toBe(true);
    await store.settle({ holdId: 'a', subject, usage: usage(1, 5), now: T0 });
    expect(verdict(await ask(store, subject, limits, T0, { id: 'c' }))).toBe('ok');
    expect(await store.release('b')).toBe(true);
    // The key's fourth request of the minute (the refused one did not count).
    expect(verdict(await ask(store, subject, limits, T0, { id: 'd' }))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0 + MINUTE))).toBe('project:research maxConcurrent 2 after 1000 ms');
    expect(await store.expireHolds(T0 + TTL)).toBe(2);
    expect(verdict(await ask(store, subject, limits, T0 + TTL))).toBe('ok');
  });

  it('a project’s limits are shared by its users; a user’s and a key’s are their own', async () => {
    const store = await open();
    const alice = (await userWithKey(store, 'alice', 'research')).subject;
    const bob = (await userWithKey(store, 'bob', 'research')).subject;
    const carol = (await userWithKey(store, 'carol')).subject;
    const limits = { project: { requestsPerMinute: 2 }, user: { requestsPerMinute: 1 } };
    expect(verdict(await ask(store, alice, limits, T0))).toBe('ok');
    expect(verdict(await ask(store, alice, limits, T0))).toBe(`user:alice requestsPerMinute 1 after ${MINUTE} ms`);
    expect(verdict(await ask(store, bob, limits, T0))).toBe('ok');
    expect(verdict(await ask(store, carol, limits, T0))).toBe('ok');
    const dave = (await userWithKey(store, 'dave', 'research')).subject;
    expect(verdict(await ask(store, dave, limits, T0))).toBe(`project:research requestsPerMinute 2 after ${MINUTE} ms`);
  });

  it('a request is counted only when admitted by every limit and every budget', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    const limits = { user: { requestsPerMinute: 1, maxConcurrent: 5 } };
    const refused = await ask(store, subject, limits, T0, { quote: 500 });
    expect(verdict(refused)).toBe('budget');
    // The budget's refusal still reports the limits and counts it read, for the x-ratelimit-* headers.
    expect(!refused.ok && refused.rates).toEqual([
      { scope: { kind: 'user', id: 'alice' }, limit: { requestsPerMinute: 1, maxConcurrent: 5 }, counts: { requestsMinute: 0, requestsHour: 0, requestsDay: 0, tokensMinute: 0, concurrent: 0 } },
    ]);
    const admitted = await ask(store, subject, limits, T0, { quote: 50, tokens: 70 });
    expect(verdict(admitted)).toBe('ok');
    expect(admitted.ok && admitted.rates?.[0]?.counts).toEqual({ requestsMinute: 0, requestsHour: 0, requestsDay: 0, tokensMinute: 0, concurrent: 0 });
    const next = await ask(store, subject, limits, T0, { quote: 1 });
    expect(verdict(next)).toBe(`user:alice requestsPerMinute 1 after ${MINUTE} ms`);
    expect(!next.ok && next.rates?.[0]?.counts).toEqual({ requestsMinute: 1, requestsHour: 0, requestsDay: 0, tokensMinute: 70, concurrent: 1 });
    // Nothing was held for the refused ones.
    expect((await store.listHolds()).length).toBe(1);
  });

  it('a request already counted (admitted again on another upstream) is checked against requests in flight only, and counted nowhere', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const limits = { key: { requestsPerMinute: 1, tokensPerMinute: 10, maxConcurrent: 2 } };
    expect(verdict(await ask(store, subject, limits, T0, { id: 'first', tokens: 10 }))).toBe('ok');
    await store.release('first');
    expect(verdict(await ask(store, subject, limits, T0, { id: 'again', tokens: 10, alreadyCounted: true }))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0, { id: 'twice', tokens: 10, alreadyCounted: true }))).toBe('ok');
    expect(verdict(await ask(store, subject, limits, T0, { tokens: 10, alreadyCounted: true }))).toBe(`key:${subject.keyId} maxConcurrent 2 after 1000 ms`);
    await store.release('again');
    await store.release('twice');
    // The window holds the first request only: one more of the minute is refused, by requests and tokens alike.
    const refused = await ask(store, subject, limits, T0, { tokens: 0 });
    expect(verdict(refused)).toBe(`key:${subject.keyId} requestsPerMinute 1 after ${MINUTE} ms`);
    expect(!refused.ok && refused.rates?.[0]?.counts.tokensMinute).toBe(10);
  });

  it('an admin’s limits for a subject override the config’s for its kind: a field absent keeps the config’s, null lifts it', async () => {
    const store = await open();
    const alice = (await userWithKey(store, 'alice')).subject;
    const bob = (await userWithKey(store, 'bob')).subject;
    const limits = { user: { requestsPerMinute: 1, requestsPerDay: 2 } };
    const put = await store.putRateLimit({ kind: 'user', id: 'alice' }, { requestsPerMinute: null, maxConcurrent: 1 }, T0);
    expect(put).toEqual({ setting: { scope: { kind: 'user', id: 'alice' }, limits: { requestsPerMinute: null, maxConcurrent: 1 }, updatedAt: T0 }, replaced: null });
    expect(verdict(await ask(store, alice, limits, T0, { id: 'a1' }))).toBe('ok');
    expect(verdict(await ask(store, alice, limits, T0))).toBe('user:alice maxConcurrent 1 after 1000 ms');
    await store.release('a1');
    expect(verdict(await ask(store, alice, limits, T0, { id: 'a2' }))).toBe('ok');
    await store.release('a2');
    expect(verdict(await ask(store, alice, limits, T0))).toBe(`user:alice requestsPerDay 2 after ${12 * HOUR} ms`);
    expect(verdict(await ask(store, bob, limits, T0))).toBe('ok');
    expect(verdict(await ask(store, bob, limits, T0))).toBe(`user:bob requestsPerMinute 1 after ${MINUTE} ms`);
    // A subject without config limits of its kind is limited by its own alone.
    await store.putRateLimit({ kind: 'key', id: bob.keyId }, { requestsPerHour: 5 }, T0);
    const replaced = await store.putRateLimit({ kind: 'user', id: 'alice' }, { requestsPerDay: 10 }, T0 + 1);
    expect(replaced.replaced?.limits).toEqual({ requestsPerMinute: null, maxConcurrent: 1 });
    expect((await store.listRateLimits()).map((s) => [`${s.scope.kind}:${s.scope.id}`, s.limits])).toEqual([
      [`key:${bob.keyId}`, { requestsPerHour: 5 }],
      ['user:alice', { requestsPerDay: 10 }],
    ]);
    expect(verdict(await ask(store, alice, limits, T0 + 2))).toBe('ok'); // per minute 1 again, per day 10: the third of the day
    expect(verdict(await ask(store, alice, limits, T0 + 3))).toBe(`user:alice requestsPerMinute 1 after ${MINUTE - 3} ms`);
    expect(await store.deleteRateLimit({ kind: 'user', id: 'alice' })).toMatchObject({ limits: { requestsPerDay: 10 } });
    expect(await store.deleteRateLimit({ kind: 'user', id: 'alice' })).toBeNull();
    expect(verdict(await ask(store, alice, {}, T0 + DAY))).toBe('ok');
    expect((await store.listRateLimits()).length).toBe(1);
  });

  it('without rates nothing is limited or counted, and a subject without limits reads no checks', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    for (let i = 0; i < 3; i++) expect((await store.reserve({ holdId: `x${i}`, subject, quote: { tokens: 1, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(true);
    const free = await ask(store, subject, {}, T0);
    expect(free.ok && free.rates).toEqual([]);
    // Holds taken without rates are in flight all the same.
    expect(verdict(await ask(store, subject, { key: { maxConcurrent: 4 } }, T0))).toBe(`key:${subject.keyId} maxConcurrent 4 after 1000 ms`);
  });
});

describe('sqlite store: rate windows across a restart', () => {
  it('a clean shutdown keeps the windows (a restart is no fresh day); the subjects’ limits are in the file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-rates-'));
    const file = path.join(dir, 'lobe-quota.db');
    try {
      const first = SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] });
      const { subject } = await userWithKey(first, 'alice');
      await first.putRateLimit({ kind: 'user', id: 'alice' }, { requestsPerDay: 2 }, T0);
      expect(verdict(await ask(first, subject, {}, T0))).toBe('ok');
      await first.close();
      const second = SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] });
      expect(verdict(await ask(second, subject, {}, T0 + HOUR))).toBe('ok');
      expect(verdict(await ask(second, subject, {}, T0 + HOUR))).toBe(`user:alice requestsPerDay 2 after ${11 * HOUR} ms`);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
