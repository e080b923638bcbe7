import { describe, expect, it } from 'vitest';
import { hashSecret } from '../auth/secrets.js';
import { T0, userWithKey } from '../testing/harness.js';
import { monthlyUserTokens, spend, usage } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';

/**
 * The same suite for SQLite and PostgreSQL: what the web console needs of a store beyond the rest —
 * renaming and moving people, a user's own history (and nobody else's), and "retry now" on alerts.
 */
const kinds = storeKinds();
const DAY = 86_400_000;

describe.each(kinds)('$name store: renaming and moving', ({ open }) => {
  it('renames a project, and answers null for one that does not exist', async () => {
    const store = await open();
    await store.createProject({ id: 'research', name: 'Research' }, T0);
    expect(await store.renameProject('research', 'R&D')).toEqual({ id: 'research', name: 'R&D', createdAt: T0 });
    expect(await store.getProject('research')).toMatchObject({ name: 'R&D' });
    expect(await store.renameProject('nope', 'x')).toBeNull();
  });

  it('renames and moves a user; the key’s identity shows the new project and name at once', async () => {
    const store = await open();
    await store.createProject({ id: 'lab', name: 'Lab' }, T0);
    const { secret } = await userWithKey(store, 'alice', 'research');
    // Read once, so a store that caches identities has this one cached.
    expect((await store.findKeyByHash(hashSecret(secret)))?.user).toMatchObject({ name: 'ALICE', projectId: 'research' });

    const moved = await store.updateUser('alice', { projectId: 'lab' });
    expect(moved).toEqual({ ok: true, user: { id: 'alice', name: 'ALICE', projectId: 'lab', externalIds: [], createdAt: T0 } });
    expect((await store.findKeyByHash(hashSecret(secret)))?.user).toMatchObject({ name: 'ALICE', projectId: 'lab' });

    expect(await store.updateUser('alice', { name: 'Alice Liddell' })).toMatchObject({ ok: true, user: { name: 'Alice Liddell', projectId: 'lab' } });
    expect(await store.updateUser('alice', { projectId: null })).toMatchObject({ ok: true, user: { name: 'Alice Liddell', projectId: null } });
    expect((await store.findKeyByHash(hashSecret(secret)))?.user).toMatchObject({ name: 'Alice Liddell', projectId: null });
  });

  it('refuses an unknown user or project, and changes nothing', async () => {
    const store = await open();
    await userWithKey(store, 'alice', 'research');
    expect(await store.updateUser('bob', { name: 'Bob' })).toEqual({ ok: false, reason: 'missing-user' });
    expect(await store.updateUser('alice', { name: 'Changed', projectId: 'nowhere' })).toEqual({ ok: false, reason: 'missing-reference', field: 'projectId' });
    expect(await store.getUser('alice')).toMatchObject({ name: 'ALICE', projectId: 'research' });
  });
});

describe.each(kinds)('$name store: one user’s history', ({ open }) => {
  async function twoPeople() {
    const store = await open();
    const alice = await userWithKey(store, 'alice');
    const bob = await userWithKey(store, 'bob');
    const settle = (who: typeof alice, id: string, model: string, tokens: number, at: number) =>
      store.settle({ holdId: id, subject: who.subject, usage: { ...usage(tokens, 0, tokens * 10), model }, now: at });
    await settle(alice, 'a1', 'gpt-4o', 100, T0 - 2 * DAY);
    await settle(alice, 'a2', 'gpt-4o-mini', 40, T0 - DAY);
    await settle(bob, 'b1', 'bob-model', 999, T0 - DAY);
    await settle(alice, 'a3', 'gpt-4o', 10, T0 - 60_000);
    await settle(bob, 'b2', 'bob-model', 5, T0);
    return store;
  }

  it('reports one user’s usage by day and model, in their time zone', async () => {
    const store = await twoPeople();
    const rows = await store.usageReport({ groupBy: ['day', 'model'], from: T0 - 3 * DAY, to: T0 + 1, timeZone: 'Asia/Shanghai', userId: 'alice' });
    expect(rows.map((r) => [...r.groups, r.totalTokens, r.costMicros])).toEqual([
      ['2026-11-20', 'gpt-4o', 100, 1_000],
      ['2026-11-21', 'gpt-4o-mini', 40, 400],
      ['2026-11-22', 'gpt-4o', 10, 100],
    ]);
    const byModel = await store.usageReport({ groupBy: 'model', from: T0 - 3 * DAY, to: T0 + 1, timeZone: 'UTC', userId: 'alice' });
    expect(byModel.map((r) => [r.group, r.requests])).toEqual([['gpt-4o', 2], ['gpt-4o-mini', 1]]);
    // Without userId, everyone's, as before.
    const everyone = await store.usageReport({ groupBy: 'model', from: T0 - 3 * DAY, to: T0 + 1, timeZone: 'UTC' });
    expect(everyone.map((r) => r.group).sort()).toEqual(['bob-model', 'gpt-4o', 'gpt-4o-mini']);
  });

  it('keeps counting one user’s usage once retention has rolled entries up', async () => {
    const store = await twoPeople();
    expect(await store.rollUpLedger(T0 - DAY / 2, 2)).toBe(3);
    const rows = await store.usageReport({ groupBy: ['day', 'model'], from: T0 - 3 * DAY, to: T0 + 1, timeZone: 'UTC', userId: 'alice' });
    expect(rows.map((r) => [...r.groups, r.totalTokens])).toEqual([
      ['2026-11-20', 'gpt-4o', 100],
      ['2026-11-21', 'gpt-4o-mini', 40],
      ['2026-11-22', 'gpt-4o', 10],
    ]);
    const byModel = await store.usageReport({ groupBy: 'model', from: T0 - 3 * DAY, to: T0 + 1, timeZone: 'UTC', userId: 'bob' });
    expect(byModel.map((r) => [r.group, r.totalTokens])).toEqual([['bob-model', 1_004]]);
  });

  it('lists one user’s newest entries only', async () => {
    const store = await twoPeople();
    expect((await store.recentEntries(10, 'alice')).map((e) => [e.requestId, e.userId])).toEqual([
      ['a3', 'alice'],
      ['a2', 'alice'],
      ['a1', 'alice'],
    ]);
    expect((await store.recentEntries(1, 'bob')).map((e) => e.requestId)).toEqual(['b2']);
    expect(await store.recentEntries(10, 'carol')).toEqual([]);
    expect((await store.recentEntries(10)).map((e) => e.requestId)).toEqual(['b2', 'a3', 'b1', 'a2', 'a1']);
  });
});

describe.each(kinds)('$name store: retrying an alert now', ({ open }) => {
  it('makes its pending deliveries due now and tells the sender; delivered ones stay delivered', async () => {
    let told = 0;
    const store = await open({ defaultBudgets: [monthlyUserTokens(1_000)], alerts: { channelsFor: () => ['ops', 'sms'], projection: false, recorded: () => told++ } });
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 'r1', 600, T0);
    const [alert] = await store.listAlerts({ limit: 10 });
    const id = alert?.alert.id as string;
    await store.markDelivered(id, 'ops', T0);
    await store.markDeliveryFailed(id, 'sms', 'timeout', T0 + 3_600_000);
    expect(await store.dueDeliveries(T0 + 1_000, 10)).toEqual([]);

    told = 0;
    expect(await store.retryDeliveries(id, T0 + 1_000)).toBe(1);
    expect(told).toBe(1);
    expect((await store.dueDeliveries(T0 + 1_000, 10)).map((d) => [d.alert.id, d.channel])).toEqual([[id, 'sms']]);
    const [after] = await store.listAlerts({ limit: 10 });
    expect(after?.deliveries.map((d) => [d.channel, d.state, d.attempts, d.lastError])).toEqual([
      ['ops', 'delivered', 1, null],
      ['sms', 'pending', 1, 'timeout'],
    ]);

    await store.markDelivered(id, 'sms', T0 + 2_000);
    expect(await store.retryDeliveries(id, T0 + 3_000)).toBe(0);
    expect(await store.retryDeliveries('alert_nope', T0)).toBeNull();
    expect(told).toBe(1);
  });
});
