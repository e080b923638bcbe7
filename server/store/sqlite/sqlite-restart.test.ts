import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { monthlyUserTokens, spend, TTL, usage, userScopes } from '../testing/store-fixtures.js';
import { T0, userWithKey } from '../../testing/harness.js';
import type { PendingCharge } from '../types.js';
import { SqliteStore } from './sqlite-store.js';


const tmpDirs: string[] = [];
afterEach(() => {
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tmpDb = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-store-'));
  tmpDirs.push(dir);
  return path.join(dir, 'lobe-quota.db');
};

const pending: PendingCharge = { model: 'gpt-4o-mini', inputTokens: 100, price: null, sessionId: null, tags: {} };
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('SqliteStore restart', () => {
  it('keeps every settled entry, clears the holds of the dead process, and rebuilds counters of changed defaults', async () => {
    const file = tmpDb();
    const defaults = [monthlyUserTokens(1_000)];
    let store = SqliteStore.open({ file, defaultBudgets: defaults, defaultThresholds: [] });
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 'a', 100, T0);
    await store.reserve({ holdId: 'in-flight', subject, quote: { tokens: 500, micros: 0 }, now: T0, ttlMs: TTL });
    await store.close();

    // Restart without the default: usage goes on, but no budget counts it.
    store = SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] });
    expect(await store.listHolds()).toEqual([]);
    await spend(store, subject, 'b', 50, T0 + 1);
    await store.close();

    // The default comes back: its counter must include 'b', not resume a stale 100.
    store = SqliteStore.open({ file, defaultBudgets: defaults, defaultThresholds: [] });
    const [state] = await store.budgetStates(userScopes(subject), T0 + 2);
    expect(state?.usage).toEqual({ usedTokens: 150, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
    await store.close();
  });

  it('a closed store leaves the holds of requests still running, with their counts, for the next start', async () => {
    const file = tmpDb();
    let store = SqliteStore.open({ file, defaultBudgets: [monthlyUserTokens(10_000)], defaultThresholds: [] });
    const { subject } = await userWithKey(store, 'alice');
    await store.reserve({ holdId: 'streaming', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL, pending });
    await store.extend('streaming', { tokens: 256, micros: 0 }, T0 + 5, TTL, 180);
    await store.close();

    store = SqliteStore.open({ file, defaultBudgets: [monthlyUserTokens(10_000)], defaultThresholds: [] });
    expect(await store.orphanedHolds(T0 + 10)).toEqual([
      {
        hold: { id: 'streaming', subject, tokens: 356, micros: 0, outputTokens: 256, createdAt: T0, expiresAt: T0 + 5 + TTL },
        pending,
        deliveredTokens: 180,
        updatedAt: T0 + 5,
      },
    ]);
    // Handed out once; the row stays until its settle, so a crash before that hands it out again.
    expect(await store.orphanedHolds(T0 + 10)).toEqual([]);
    await store.close();
    store = SqliteStore.open({ file, defaultBudgets: [monthlyUserTokens(10_000)], defaultThresholds: [] });
    expect((await store.orphanedHolds(T0 + 20)).map((o) => o.hold.id)).toEqual(['streaming']);
    // Released rather than settled (what a caller may choose), it is gone for good.
    expect(await store.release('streaming')).toBe(true);
    expect(await store.release('streaming')).toBe(false);
    await store.close();
    store = SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] });
    expect(await store.orphanedHolds(T0 + 30)).toEqual([]);
    await store.close();
  });

  it('holds settled, released or expired leave no row behind; a crash only loses the changes of its last turn', async () => {
    const file = tmpDb();
    const store = SqliteStore.open({ file, defaultBudgets: [monthlyUserTokens(10_000)], defaultThresholds: [] });
    const { subject } = await userWithKey(store, 'alice');
    const take = (holdId: string) => store.reserve({ holdId, subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL, pending });
    for (const id of ['settled', 'released', 'expired', 'live']) await take(id);
    await nextTurn(); // each is in the file now
    await store.settle({ holdId: 'settled', subject, usage: usage(100, 5), now: T0 + 1 });
    expect(await store.release('released')).toBe(true);
    // Once, even before the deletion of its row is committed.
    expect(await store.release('released')).toBe(false);
    await store.renew('live', T0 + TTL - 1, TTL);
    expect(await store.expireHolds(T0 + TTL)).toBe(1);
    await nextTurn();
    // The process dies here, with a hold taken in its last turn not yet written.
    await take('too-late');
    const next = SqliteStore.open({ file, defaultBudgets: [monthlyUserTokens(10_000)], defaultThresholds: [] });
    expect((await next.orphanedHolds(T0 + TTL)).map((o) => o.hold.id)).toEqual(['live']);
    await next.close();
    await store.close();
  });
});
