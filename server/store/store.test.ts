import { describe, expect, it } from 'vitest';
import { hashSecret } from '../auth/secrets.js';
import { scopesOfKey } from '../quota/scope.js';
import { monthlyTokens, monthlyUserTokens, spend, TTL, usage, userScopes } from './testing/store-fixtures.js';
import type { KeyIdentity } from './types.js';
import { T0, userWithKey } from '../testing/harness.js';
import { storeKinds } from './testing/store-kinds.js';

const HOUR = 3_600_000;

/** The same suite for SQLite and PostgreSQL: they differ in how, never in what they guarantee. */
const kinds = storeKinds();

describe.each(kinds)('$name store: settlement', ({ open }) => {
  it('settles a request once: a second settle returns the first entry and changes nothing', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const { subject } = await userWithKey(store, 'alice');
    const first = await spend(store, subject, 'req-1', 300, T0);
    const again = await store.settle({ holdId: 'req-1', subject, usage: usage(0, 900), now: T0 });
    expect(again).toEqual({ entry: first.entry, duplicate: true });
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage.usedTokens).toBe(300);
  });

  it('records a settle whose hold already expired: the tokens were spent upstream', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'slow', subject, quote: { tokens: 400, micros: 0 }, now: T0, ttlMs: TTL });
    expect(await store.expireHolds(T0 + TTL)).toBe(1);
    const late = await store.settle({ holdId: 'slow', subject, usage: usage(100, 200), now: T0 + TTL + 1 });
    expect(late.duplicate).toBe(false);
    const [state] = await store.budgetStates(userScopes(subject), T0 + TTL + 1);
    expect(state?.usage).toEqual({ usedTokens: 300, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
  });

  it('records usage above the hold truthfully, and the budget then reads as over its limit', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'r', subject, quote: { tokens: 90, micros: 0 }, now: T0, ttlMs: TTL });
    await store.settle({ holdId: 'r', subject, usage: usage(60, 60), now: T0 });
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage.usedTokens).toBe(120);
    const refused = await store.reserve({ holdId: 'next', subject, quote: { tokens: 1, micros: 0 }, now: T0, ttlMs: TTL });
    expect(refused.ok).toBe(false);
  });

  it('release always frees the hold, and a released hold cannot be released twice', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'r', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL });
    expect((await store.reserve({ holdId: 'r2', subject, quote: { tokens: 1, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(false);
    expect(await store.release('r')).toBe(true);
    expect(await store.release('r')).toBe(false);
    expect((await store.reserve({ holdId: 'r3', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(true);
  });

  it('holds of nothing (an empty prompt, no output) come and go like any other', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    for (const id of ['a', 'b', 'c']) expect((await store.reserve({ holdId: id, subject, quote: { tokens: 0, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(true);
    await store.settle({ holdId: 'a', subject, usage: usage(0, 0), now: T0 });
    expect(await store.release('b')).toBe(true);
    expect(await store.expireHolds(T0 + TTL)).toBe(1);
    expect(await store.listHolds()).toEqual([]);
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage).toEqual({ usedTokens: 0, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
  });

  it('clamps the output allowance to the tightest budget and refuses below the minimum', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000), { ...monthlyUserTokens(5_000), scope: 'global' }] });
    const { subject } = await userWithKey(store, 'alice');
    const quote = (want: number) => ({ tokens: 200, micros: 0, output: { wantTokens: want, minTokens: 1, microsPerMillion: 0 } });
    const first = await store.reserve({ holdId: 'a', subject, quote: quote(4_096), now: T0, ttlMs: TTL });
    expect(first.ok && first.hold.outputTokens).toBe(800);
    const second = await store.reserve({ holdId: 'b', subject, quote: quote(10), now: T0, ttlMs: TTL });
    expect(second.ok).toBe(false);
    expect(!second.ok && second.blocking.budget.key).toBe('user:alice|month');
  });

  it('renews a live request’s hold, even when its budget is full, so it does not expire under it', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'slow', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL });
    expect(await store.renew('slow', T0 + TTL - 1, TTL)).toBe(true);
    expect(await store.expireHolds(T0 + TTL)).toBe(0);
    expect(await store.expireHolds(T0 + 2 * TTL - 1)).toBe(1);
    expect(await store.renew('slow', T0 + 2 * TTL, TTL)).toBe(false);
  });

  it('extends a lease only while every budget has room, and renews its expiry', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(100)] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 's', subject, quote: { tokens: 50, micros: 0 }, now: T0, ttlMs: TTL });
    const ok = await store.extend('s', { tokens: 50, micros: 0 }, T0 + 1_000, TTL);
    expect(ok.ok && ok.hold).toMatchObject({ tokens: 100, expiresAt: T0 + 1_000 + TTL });
    const full = await store.extend('s', { tokens: 1, micros: 0 }, T0 + 2_000, TTL);
    expect(full.ok === false && full.reason).toBe('exceeded');
    expect((await store.extend('nope', { tokens: 1, micros: 0 }, T0, TTL)).ok).toBe(false);
  });
});

describe.each(kinds)('$name store: settles that arrive together', ({ open }) => {
  it('commits settles that arrive together in one go, each exactly once, duplicates included', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(10_000)] });
    const { subject } = await userWithKey(store, 'alice');
    for (let i = 0; i < 50; i++) await store.reserve({ holdId: `r${i}`, subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL });
    const settles = Array.from({ length: 50 }, (_, i) => store.settle({ holdId: `r${i}`, subject, usage: usage(10, 20 + i), now: T0 }));
    const again = store.settle({ holdId: 'r7', subject, usage: usage(999, 999), now: T0 });
    const results = await Promise.all([...settles, again]);
    expect(results.filter((r) => r.duplicate)).toHaveLength(1);
    expect(results[50]?.entry).toEqual(results[7]?.entry);
    expect(await store.listHolds()).toEqual([]);
    const [state] = await store.budgetStates(userScopes(subject), T0);
    const expected = Array.from({ length: 50 }, (_, i) => 30 + i).reduce((a, b) => a + b, 0);
    expect(state?.usage).toEqual({ usedTokens: expected, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
    for (const row of await store.counterAudit()) expect([row.stored, row.cached]).toEqual([row.ledger, row.ledger]);
  });

  it('a settle the database refuses fails alone; the others of its commit are kept', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(10_000)] });
    const { subject } = await userWithKey(store, 'alice');
    for (const id of ['good-1', 'bad', 'good-2']) await store.reserve({ holdId: id, subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL });
    const outcomes = await Promise.allSettled([
      store.settle({ holdId: 'good-1', subject, usage: usage(1, 2), now: T0 }),
      store.settle({ holdId: 'bad', subject, usage: usage(-5, 2), now: T0 }),
      store.settle({ holdId: 'good-2', subject, usage: usage(3, 4), now: T0 }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    // The refused request keeps its hold until its caller releases it.
    expect((await store.listHolds()).map((h) => h.id)).toEqual(['bad']);
    const [state] = await store.budgetStates(userScopes(subject), T0);
    expect(state?.usage).toMatchObject({ usedTokens: 10, reservedTokens: 100 });
    for (const row of await store.counterAudit()) expect([row.stored ?? row.ledger, row.cached ?? row.ledger]).toEqual([row.ledger, row.ledger]);
  });
});

describe.each(kinds)('$name store: windows', ({ open }) => {
  it('starts a month budget afresh at midnight of the first in its time zone', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000, 'Asia/Shanghai')] });
    const { subject } = await userWithKey(store, 'alice');
    const lastMinute = Date.parse('2026-11-30T23:59:00+08:00');
    await spend(store, subject, 'nov', 700, lastMinute);
    const [nov] = await store.budgetStates(userScopes(subject), lastMinute);
    expect(nov?.usage.usedTokens).toBe(700);
    expect(nov?.resetsAt).toBe(Date.parse('2026-12-01T00:00:00+08:00'));
    const [dec] = await store.budgetStates(userScopes(subject), Date.parse('2026-12-01T00:00:00+08:00'));
    expect(dec?.usage.usedTokens).toBe(0);
  });

  it('lets usage slide out of a rolling window bucket by bucket', async () => {
    const store = await open({ defaultBudgets: [{ scope: 'user', window: { kind: 'rolling', hours: 5 }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' }] });
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 'early', 300, T0);
    await spend(store, subject, 'later', 200, T0 + 2 * HOUR);
    const read = async (at: number) => (await store.budgetStates(userScopes(subject), at))[0];
    expect((await read(T0 + 2 * HOUR))?.usage.usedTokens).toBe(500);
    const early = await read(T0 + 2 * HOUR);
    expect(early?.resetsAt).toBe(T0 + 5 * HOUR); // T0 is a bucket start (5-minute buckets)
    expect((await read(T0 + 5 * HOUR - 1))?.usage.usedTokens).toBe(500);
    expect((await read(T0 + 5 * HOUR))?.usage.usedTokens).toBe(200);
    expect((await read(T0 + 7 * HOUR))?.usage.usedTokens).toBe(0);
  });

  it('re-counts from the ledger when an admin moves a budget to another time zone', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    // 2026-11-22 in UTC; 23:30 UTC on the 21st is already the 22nd in Shanghai.
    await spend(store, subject, 'a', 100, Date.parse('2026-11-21T23:30:00Z'));
    await spend(store, subject, 'b', 10, Date.parse('2026-11-22T10:00:00Z'));
    const day = (timeZone: string) => ({
      scope: { kind: 'user' as const, id: 'alice' },
      window: { kind: 'day' as const, timeZone },
      limitTokens: 1_000,
      limitMicros: null,
      thresholds: null,
      onLimit: 'reject' as const,
      downgradeTo: null,
    });
    const now = Date.parse('2026-11-22T12:00:00Z');
    await store.putBudget(day('UTC'), now);
    expect((await store.budgetStates(userScopes(subject), now))[0]?.usage.usedTokens).toBe(10);
    const replaced = await store.putBudget(day('Asia/Shanghai'), now);
    expect(replaced.replaced).not.toBeNull();
    expect((await store.budgetStates(userScopes(subject), now))[0]?.usage.usedTokens).toBe(110);
    for (const row of await store.counterAudit()) expect([row.stored ?? row.ledger, row.cached ?? row.ledger]).toEqual([row.ledger, row.ledger]);
  });

  it('putBudget returns the budget it replaced, as it was, or null for a new one', async () => {
    const store = await open();
    await userWithKey(store, 'alice');
    const month = { scope: { kind: 'user' as const, id: 'alice' }, thresholds: null, onLimit: 'reject' as const, downgradeTo: null };
    const created = await store.putBudget({ ...month, window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 100_000, limitMicros: null }, T0);
    expect(created.replaced).toBeNull();
    const changed = await store.putBudget({ ...month, window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: null, limitMicros: 20_000_000 }, T0);
    expect(changed.replaced).toEqual(created.budget);
    expect(changed.budget).toMatchObject({ id: created.budget.id, window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: null, limitMicros: 20_000_000 });
  });

  it('an admin budget replaces the config default of the same period, and deleting it brings the default back', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000_000)] });
    const { subject } = await userWithKey(store, 'alice');
    const { budget } = await store.putBudget(
      { scope: { kind: 'user', id: 'alice' }, window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 5, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
      T0,
    );
    const limits = async () => (await store.budgetStates(userScopes(subject), T0)).map((s) => [s.budget.source, s.budget.limitTokens]);
    expect(await limits()).toEqual([['admin', 5]]);
    await store.deleteBudget(budget.id);
    expect(await limits()).toEqual([['config', 1_000_000]]);
  });
});


describe.each(kinds)('$name store: a key’s own states (GET /quota)', ({ open }) => {
  it('are the key’s identity and the budgets of its scopes, as findKeyByHash and budgetStates read them, read after read', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000), monthlyTokens('project', 5_000), monthlyTokens('key', 2_000)] });
    const { secret, subject } = await userWithKey(store, 'alice', 'team');
    const hash = hashSecret(secret);
    // The first read and the later ones (which PostgreSQL makes in one statement) answer alike.
    for (const [i, [spent, tokens]] of ([[0, 0], [300, 300], [200, 500]] as const).entries()) {
      if (spent > 0) await spend(store, subject, `req-${i}`, spent, T0);
      const identity = await store.findKeyByHash(hash);
      const states = await store.budgetStates(scopesOfKey(identity as KeyIdentity), T0);
      expect(await store.keyStates(hash, T0)).toEqual({ identity, states });
      expect(states.map((s) => [s.budget.key, s.usage.usedTokens])).toEqual([
        [`key:${subject.keyId}|month`, tokens],
        ['user:alice|month', tokens],
        ['project:team|month', tokens],
      ]);
    }
  });

  it('are null for a key no one has, and for a key once it is revoked, including one read before', async () => {
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000)] });
    const { secret, subject } = await userWithKey(store, 'alice');
    expect(await store.keyStates(hashSecret(`${secret}x`), T0)).toBeNull();
    expect(await store.keyStates(hashSecret(secret), T0)).not.toBeNull();
    await store.revokeKey(subject.keyId, T0);
    expect(await store.keyStates(hashSecret(secret), T0)).toBeNull();
  });
});

describe.each(kinds)('$name store: meta', ({ open }) => {
  it('claimMeta keeps the first value stored; setMeta replaces it', async () => {
    const store = await open();
    expect(await store.getMeta('k')).toBeNull();
    expect(await store.claimMeta('k', 'first')).toBe('first');
    expect(await store.claimMeta('k', 'second')).toBe('first');
    await store.setMeta('k', 'third');
    expect(await store.getMeta('k')).toBe('third');
  });
});
