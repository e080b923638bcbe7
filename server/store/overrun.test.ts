import { describe, expect, it } from 'vitest';
import type { RequestSubject } from '../quota/scope.js';
import { T0, userWithKey } from '../testing/harness.js';
import { usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';
import type { Store } from './types.js';

/** A settle charged more output than its request was allowed: the entry says by how much, and an
 * `overrun` alert goes to the admins, at most once per model and clock hour. */
const kinds = storeKinds();
const HOUR = 3_600_000;
const alerts = { channelsFor: () => ['ops'], projection: false };

let n = 0;
const settle = (store: Store, subject: RequestSubject, now: number, overrunTokens: number, model = 'gpt-4o') =>
  store.settle({ holdId: `req-${n++}`, subject, now, usage: { ...usage(100, 1_000 + overrunTokens), model, overrunTokens } });

describe.each(kinds)('$name store: overruns', ({ open }) => {
  it('are kept on the entry and alert once per model and hour, in every channel’s outbox', async () => {
    const store = await open({ defaultThresholds: [], alerts });
    const alice = (await userWithKey(store, 'alice')).subject;
    const bob = (await userWithKey(store, 'bob')).subject;

    const first = await settle(store, alice, T0 + 1_000, 4_000);
    expect(first.entry).toMatchObject({ outputTokens: 5_000, overrunTokens: 4_000 });
    expect((await settle(store, alice, T0 + 2_000, 0)).entry.overrunTokens).toBe(0);
    // The same model again within the hour, for someone else: charged and kept, no second alert.
    expect((await settle(store, bob, T0 + 3_000, 10)).entry.overrunTokens).toBe(10);
    // Another model, and the same model the next hour: an alert each.
    await settle(store, bob, T0 + 4_000, 7, 'o3');
    await settle(store, bob, T0 + HOUR, 99);
    // Settling the first again changes nothing.
    expect((await store.settle({ holdId: first.entry.requestId, subject: alice, now: T0 + HOUR + 1, usage: { ...usage(100, 9_000), overrunTokens: 8_000 } })).duplicate).toBe(true);

    const entries = await store.recentEntries(10);
    expect(entries.map((e) => e.overrunTokens)).toEqual([99, 7, 10, 0, 4_000]);
    const fired = await store.listAlerts({ kind: 'overrun', limit: 10 });
    expect(fired.map((r) => [r.alert.overrun?.model, r.alert.scope, r.windowStart, r.alert.overrun?.chargedOutputTokens])).toEqual([
      ['gpt-4o', 'user:bob', T0 + HOUR, 1_099],
      ['o3', 'user:bob', T0, 1_007],
      ['gpt-4o', 'user:alice', T0, 5_000],
    ]);
    expect(fired[2]?.alert).toMatchObject({
      kind: 'overrun',
      subjectName: 'ALICE',
      threshold: null,
      usage: 5_000,
      limit: 1_000,
      percentage: 500,
      unit: 'tokens',
      firedAt: new Date(T0 + 1_000).toISOString(),
      overrun: { requestId: first.entry.requestId, model: 'gpt-4o', userId: 'alice', keyId: alice.keyId, allowedOutputTokens: 1_000, chargedOutputTokens: 5_000 },
    });
    expect(fired.every((r) => r.deliveries.length === 1 && r.deliveries[0]?.state === 'pending')).toBe(true);
    expect((await store.dueDeliveries(T0 + HOUR, 10)).map((d) => d.alert.kind)).toEqual(['overrun', 'overrun', 'overrun']);
    expect(await store.listAlerts({ kind: 'anomaly', limit: 10 })).toEqual([]);
  });

  it('settles of one model arriving together fire one alert', async () => {
    const store = await open({ defaultThresholds: [], alerts });
    const alice = (await userWithKey(store, 'alice')).subject;
    const settled = await Promise.all(Array.from({ length: 8 }, (_, i) => settle(store, alice, T0 + i, 100 + i)));
    expect(settled.map((s) => s.entry.overrunTokens)).toEqual(Array.from({ length: 8 }, (_, i) => 100 + i));
    expect(await store.listAlerts({ kind: 'overrun', limit: 10 })).toHaveLength(1);
  });
});
