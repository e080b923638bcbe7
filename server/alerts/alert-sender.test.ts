import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { DefaultBudget } from '../config/schema.js';
import { usage } from '../store/testing/store-fixtures.js';
import { storeKinds, type StoreKind } from '../store/testing/store-kinds.js';
import type { Store } from '../store/types.js';
import { eventually, T0, userWithKey } from '../testing/harness.js';
import type { AlertEvent } from './alert-event.js';
import { AlertSender, type AlertChannel } from './alert-sender.js';
import { createChannels } from './channels/index.js';
import { startReceiver } from './channels/receiver.test-util.js';

/**
 * An alert leaves when it is recorded, not at the sender's next poll. The poll here is an hour
 * apart and every wait far shorter, so only the wake-up can explain a delivery.
 */
const POLL_MS = 3_600_000;
const WITHIN_MS = 5_000;
const kinds = storeKinds();
const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' };

describe.each(kinds)('$name store: the alert sender wakes when an alert is recorded', ({ open }) => {
  it('a threshold crossed, an overrun and a spike each reach the webhook long before the next poll', async () => {
    const receiver = await startReceiver({ status: 200, body: 'ok' });
    const clock = new ManualClock(T0);
    const channels = createChannels([{ type: 'webhook', name: 'ops', url: receiver.url('/hook') }], { locale: 'en', now: () => clock.now() });
    let sender: AlertSender | undefined;
    const store = await open({
      defaultBudgets: [monthly],
      defaultThresholds: [50],
      alerts: { channelsFor: () => ['ops'], projection: false, recorded: () => sender?.wake() },
    });
    sender = new AlertSender({ store, channels, clock });
    sender.start(POLL_MS);
    try {
      const { subject } = await userWithKey(store, 'alice');
      const kindsReceived = () => receiver.requests.map((r) => (JSON.parse(r.rawBody.toString()) as AlertEvent).kind);

      await store.settle({ holdId: 'half', subject, usage: usage(0, 600), now: T0 });
      await eventually(async () => receiver.requests.length === 1, WITHIN_MS, 'the threshold alert');
      await store.settle({ holdId: 'over', subject, usage: { ...usage(0, 50), overrunTokens: 40 }, now: T0 });
      await eventually(async () => receiver.requests.length === 2, WITHIN_MS, 'the overrun alert');
      clock.advance(60_000);
      expect(await store.recordSpikes(clock.now(), { enabled: true, factor: 5, baselineHours: 24, minTokens: 100 })).toHaveLength(2);
      // Alice, and her key: one anomaly per subject.
      await eventually(async () => receiver.requests.length === 4, WITHIN_MS, 'the spike alerts');
      expect(kindsReceived()).toEqual(['threshold', 'overrun', 'anomaly', 'anomaly']);
      await eventually(async () => (await store.listAlerts({ state: 'pending', limit: 10 })).length === 0, WITHIN_MS, 'every delivery to be marked');
    } finally {
      await sender.stop();
      await receiver.close();
    }
  });
});

describe('wake-ups', () => {
  /** A channel whose sends wait for `open()`, counting how many run at once. */
  function gatedChannel() {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const channel = {
      name: 'ops',
      sent: [] as AlertEvent[],
      inFlight: 0,
      mostAtOnce: 0,
      open,
      async send(alert: AlertEvent) {
        channel.mostAtOnce = Math.max(channel.mostAtOnce, ++channel.inFlight);
        await gate;
        channel.inFlight--;
        channel.sent.push(alert);
      },
    };
    return channel;
  }

  /** The store, counting the passes made over its outbox. */
  function counted(store: Store) {
    const passes = { count: 0 };
    const dueDeliveries: Store['dueDeliveries'] = (now, limit) => {
      passes.count++;
      return store.dueDeliveries(now, limit);
    };
    return { store: new Proxy(store, { get: (target, p) => (p === 'dueDeliveries' ? dueDeliveries : (Reflect.get(target, p) as unknown)) }), passes };
  }

  const sqlite = kinds.find((k) => k.name === 'sqlite') as StoreKind;

  it('coalesce: a burst makes one pass, passes never overlap, and one recorded during a pass is sent right after it', async () => {
    const clock = new ManualClock(T0);
    const channel: AlertChannel & ReturnType<typeof gatedChannel> = gatedChannel();
    let sender: AlertSender | undefined;
    const raw = await sqlite.open({ defaultBudgets: [monthly], defaultThresholds: [50, 80], alerts: { channelsFor: () => ['ops'], projection: false, recorded: () => sender?.wake() } });
    const { store, passes } = counted(raw);
    sender = new AlertSender({ store, channels: [channel], clock });
    sender.start(POLL_MS);
    const { subject } = await userWithKey(raw, 'alice');

    await raw.settle({ holdId: 'half', subject, usage: usage(0, 600), now: T0 });
    for (let i = 0; i < 10; i++) sender.wake();
    await eventually(async () => channel.inFlight === 1, WITHIN_MS, 'the first send');
    // Recorded while the first pass is sending: that pass may have read the outbox before it.
    await raw.settle({ holdId: 'most', subject, usage: usage(0, 300), now: T0 });
    for (let i = 0; i < 10; i++) sender.wake();
    channel.open();
    await eventually(async () => channel.sent.length === 2, WITHIN_MS, 'the second alert');
    await sender.stop();
    expect(channel.sent.map((a) => a.threshold)).toEqual([50, 80]);
    expect(channel.mostAtOnce).toBe(1);
    expect(passes.count).toBe(2);
  });

  it('stop: no pass starts after it', async () => {
    const clock = new ManualClock(T0);
    const raw = await sqlite.open();
    const { store, passes } = counted(raw);
    const sender = new AlertSender({ store, channels: [], clock });
    sender.wake();
    await sender.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(passes.count).toBe(0);
  });
});
