import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { DefaultBudget } from '../config/schema.js';
import type { RequestSubject } from '../quota/scope.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Usage } from '../store/types.js';
import { T0, userWithKey } from '../testing/harness.js';
import type { AlertEvent } from './alert-event.js';
import { AlertSender, retryDelayMs, type AlertChannel } from './alert-sender.js';
import { createChannels } from './channels/index.js';
import { startReceiver } from './channels/receiver.test-util.js';

const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' };

const usage = (tokens: number, model = 'gpt-4o-mini'): Usage => ({
  model,
  inputTokens: tokens,
  outputTokens: 0,
  cachedTokens: 0,
  reasoningTokens: 0,
  costMicros: 0,
  source: 'upstream',
  outcome: 'ok',
  latencyMs: 1,
  sessionId: null,
  tags: {},
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tmpFile = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-alerts-'));
  dirs.push(dir);
  return path.join(dir, 'lobe-quota.db');
};

const open = (file: string, channels: string[] = ['ops']) =>
  SqliteStore.open({ file, defaultBudgets: [monthly], defaultThresholds: [50, 80, 90, 95, 100], alerts: { channelsFor: () => channels, projection: false } });

let seq = 0;
const spend = (store: SqliteStore, subject: RequestSubject, tokens: number, now: number, model?: string) =>
  store.settle({ holdId: `r${seq++}`, subject, usage: usage(tokens, model), now });

/** A channel that records what it was sent and fails the first `failures` sends. */
function recordingChannel(name: string, failures = 0): AlertChannel & { sent: AlertEvent[]; calls: number } {
  const channel = {
    name,
    sent: [] as AlertEvent[],
    calls: 0,
    async send(alert: AlertEvent) {
      channel.calls++;
      if (channel.calls <= failures) throw new Error(`${name} is down (call ${channel.calls})`);
      channel.sent.push(alert);
    },
  };
  return channel;
}

describe('alerts fire when settlement crosses a threshold', () => {
  it('one request crossing 50 % and 80 % fires both, once, with who, how much and the top consumers', async () => {
    const store = open(':memory:');
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 450, T0, 'gpt-4o');
    await spend(store, subject, 400, T0 + 1, 'gpt-4o-mini');
    await spend(store, subject, 10, T0 + 2);
    const alerts = await store.listAlerts({ limit: 10 });
    expect(alerts.map((a) => a.alert.threshold).sort()).toEqual([50, 80]);
    const eighty = alerts.find((a) => a.alert.threshold === 80)?.alert;
    expect(eighty).toMatchObject({
      kind: 'threshold',
      scope: 'user:alice',
      subjectName: 'ALICE',
      window: { kind: 'month', timeZone: 'Asia/Shanghai' },
      percentage: 85,
      usage: 850,
      limit: 1_000,
      unit: 'tokens',
      resetsAt: '2026-12-01T00:00:00+08:00',
      firedAt: new Date(T0 + 1).toISOString(),
      projectedAt: null,
    });
    expect(eighty?.topConsumers).toEqual([
      { kind: 'user', id: 'alice', usage: 850 },
      { kind: 'model', id: 'gpt-4o', usage: 450 },
      { kind: 'model', id: 'gpt-4o-mini', usage: 400 },
    ]);
    expect(alerts.every((a) => a.deliveries.length === 1 && a.deliveries[0]?.state === 'pending')).toBe(true);
  });

  it('fires once per window even when several settles cross together, and afresh in the next window', async () => {
    const store = open(':memory:');
    const { subject } = await userWithKey(store, 'alice');
    await Promise.all([spend(store, subject, 270, T0), spend(store, subject, 270, T0), spend(store, subject, 270, T0)]);
    expect((await store.listAlerts({ limit: 10 })).map((a) => a.alert.threshold).sort()).toEqual([50, 80]);
    const december = Date.parse('2026-12-01T00:00:00+08:00');
    await spend(store, subject, 600, december);
    const alerts = await store.listAlerts({ limit: 10 });
    const november = Date.parse('2026-11-01T00:00:00+08:00');
    expect(alerts.map((a) => [a.windowStart, a.alert.threshold]).sort()).toEqual([
      [november, 50],
      [november, 80],
      [december, 50],
    ]);
  });

  it('the database, not memory, keeps an alert from firing twice: a restart in the middle of a window', async () => {
    const file = tmpFile();
    let store = open(file);
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 600, T0);
    await store.close();
    store = open(file);
    // A counter rebuilt from the ledger after the restart; the crossing of 50 % is not repeated.
    await spend(store, subject, 10, T0 + 1);
    await spend(store, subject, 300, T0 + 2);
    expect((await store.listAlerts({ limit: 10 })).map((a) => a.alert.threshold).sort()).toEqual([50, 80, 90]);
    await store.close();
  });

  it('a projected alert fires once per window when the burn rate runs the budget out before its reset', async () => {
    const store = SqliteStore.open({ file: ':memory:', defaultBudgets: [monthly], defaultThresholds: [100], alerts: { channelsFor: () => [], projection: true } });
    const { subject } = await userWithKey(store, 'alice');
    // Nov 1 +08:00 start; by Nov 11 (10 days in) 600 of 1000 used → runs out in under 7 more days.
    const day11 = Date.parse('2026-11-11T00:00:00+08:00');
    await spend(store, subject, 600, day11);
    await spend(store, subject, 10, day11 + 60_000);
    const [projected, ...rest] = await store.listAlerts({ limit: 10 });
    expect(rest).toEqual([]);
    expect(projected?.alert).toMatchObject({ kind: 'projected', threshold: null, usage: 600, percentage: 60 });
    // 400 left at 60 per day → 6.67 days after Nov 11.
    expect(Date.parse(projected?.alert.projectedAt as string)).toBe(day11 + Math.ceil((400 * (day11 - Date.parse('2026-11-01T00:00:00+08:00'))) / 600));
  });

  it('filters the audit list by scope, threshold and delivery state', async () => {
    const store = open(':memory:');
    const alice = await userWithKey(store, 'alice');
    const bob = await userWithKey(store, 'bob');
    await spend(store, alice.subject, 900, T0);
    await spend(store, bob.subject, 500, T0);
    expect((await store.listAlerts({ scope: 'user:bob', limit: 10 })).map((a) => a.alert.threshold)).toEqual([50]);
    expect((await store.listAlerts({ threshold: 80, limit: 10 })).map((a) => a.alert.scope)).toEqual(['user:alice']);
    expect(await store.listAlerts({ state: 'delivered', limit: 10 })).toEqual([]);
  });
});

describe('the outbox', () => {
  it('delivers what is due, never twice; a failing channel is retried with backoff until it succeeds', async () => {
    const store = open(':memory:', ['ops', 'flaky']);
    const clock = new ManualClock(T0);
    const ops = recordingChannel('ops');
    const flaky = recordingChannel('flaky', 2);
    const sender = new AlertSender({ store, channels: [ops, flaky], clock, baseDelayMs: 1_000, maxDelayMs: 60_000 });
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 500, T0);

    expect(await sender.deliverDue()).toBe(1);
    expect(ops.sent.map((a) => a.threshold)).toEqual([50]);
    const [record] = await store.listAlerts({ limit: 1 });
    expect(record?.deliveries.find((d) => d.channel === 'flaky')).toMatchObject({ state: 'pending', attempts: 1, lastError: 'flaky is down (call 1)', nextAttemptAt: T0 + 1_000 });

    expect(await sender.deliverDue()).toBe(0); // not due yet, and ops is done
    clock.advance(1_000);
    expect(await sender.deliverDue()).toBe(0); // second failure: next try 2 s later
    clock.advance(1_999);
    expect(await sender.deliverDue()).toBe(0);
    clock.advance(1);
    expect(await sender.deliverDue()).toBe(1);
    expect(flaky.sent).toHaveLength(1);
    expect(ops.sent).toHaveLength(1);
    const [done] = await store.listAlerts({ limit: 1 });
    expect(done?.deliveries.map((d) => [d.channel, d.state, d.attempts])).toEqual([
      ['flaky', 'delivered', 3],
      ['ops', 'delivered', 1],
    ]);
  });

  it('survives a restart: pending alerts are delivered by the next process, delivered ones are not sent again', async () => {
    const file = tmpFile();
    const clock = new ManualClock(T0);
    let store = open(file);
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 500, T0);
    const first = recordingChannel('ops');
    await new AlertSender({ store, channels: [first], clock }).deliverDue();
    await spend(store, subject, 400, T0 + 1); // crosses 80 %: pending when the process stops
    await store.close();

    store = open(file);
    clock.advance(1);
    const second = recordingChannel('ops');
    await new AlertSender({ store, channels: [second], clock }).deliverDue();
    expect(first.sent.map((a) => a.threshold)).toEqual([50]);
    expect(second.sent.map((a) => a.threshold).sort()).toEqual([80, 90]);
    await store.close();
  });

  it('through the real webhook channel: a receiver that is down gets the alert after a restart, signed, exactly once', async () => {
    const receiver = await startReceiver({ status: 503, body: 'down for maintenance' });
    try {
      const file = tmpFile();
      const clock = new ManualClock(T0);
      const channels = createChannels([{ type: 'webhook', name: 'ops-hook', url: receiver.url('/hook'), secret: 's3cret' }], { locale: 'en', now: () => clock.now() });
      const openWith = () =>
        SqliteStore.open({
          file,
          defaultBudgets: [monthly],
          defaultThresholds: [50, 80, 90, 95, 100],
          alerts: { channelsFor: (alert) => channels.filter((c) => c.accepts(alert)).map((c) => c.name), projection: false },
        });
      let store = openWith();
      const { subject } = await userWithKey(store, 'alice');
      await spend(store, subject, 600, T0);
      expect(await new AlertSender({ store, channels, clock, baseDelayMs: 1_000 }).deliverDue()).toBe(0);
      expect(receiver.requests).toHaveLength(1);
      await store.close();

      // The receiver comes back; a new process finds the pending delivery once its backoff is over.
      receiver.answer = { status: 200, body: 'ok' };
      store = openWith();
      const sender = new AlertSender({ store, channels, clock, baseDelayMs: 1_000 });
      expect(await sender.deliverDue()).toBe(0);
      clock.advance(1_000);
      expect(await sender.deliverDue()).toBe(1);
      expect(await sender.deliverDue()).toBe(0);
      clock.advance(60_000);
      expect(await sender.deliverDue()).toBe(0);
      expect(receiver.requests).toHaveLength(2);
      const delivered = receiver.requests[1];
      const expected = `sha256=${createHmac('sha256', 's3cret').update(delivered?.rawBody ?? Buffer.alloc(0)).digest('hex')}`;
      expect(delivered?.headers['x-lobe-quota-signature']).toBe(expected);
      expect(JSON.parse(delivered?.rawBody.toString('utf8') ?? '{}')).toMatchObject({ scope: 'user:alice', threshold: 50, usage: 600, limit: 1_000, unit: 'tokens' });
      const [record] = await store.listAlerts({ limit: 1 });
      expect(record?.deliveries).toMatchObject([{ channel: 'ops-hook', state: 'delivered', attempts: 2 }]);
      await store.close();
    } finally {
      await receiver.close();
    }
  });

  it('backs off exponentially up to a cap', () => {
    expect([1, 2, 3, 4, 10, 30].map((n) => retryDelayMs(n, 5_000, 900_000))).toEqual([5_000, 10_000, 20_000, 40_000, 900_000, 900_000]);
  });
});
