import { describe, expect, it } from 'vitest';
import type { SpikeConfig } from '../alerts/spikes.js';
import { describeAlert } from '../alerts/channels/alert-text.js';
import { plainText } from '../alerts/channels/escape.js';
import type { RequestSubject } from '../quota/scope.js';
import { T0, userWithKey } from '../testing/harness.js';
import { storeKinds, type StoreKind } from './testing/store-kinds.js';
import type { Store } from './types.js';

const HOUR = 3_600_000;
const CONFIG: SpikeConfig = { enabled: true, factor: 5, baselineHours: 24, minTokens: 10_000 };
// The fixed clock: 12:40 UTC, so the clock hour of the alerts is 12:00–13:00.
const NOW = T0 + 40 * 60_000;

let n = 0;
const spend = (store: Store, subject: RequestSubject, tokens: number, at: number) =>
  store.settle({
    holdId: `req-${n++}`,
    subject,
    now: at,
    usage: {
      model: 'gpt-4o-mini',
      inputTokens: tokens,
      outputTokens: 0,
      cachedTokens: 0,
      reasoningTokens: 0,
      costMicros: 0,
      source: 'upstream',
      outcome: 'ok',
      latencyMs: 5,
      sessionId: null,
      tags: {},
    },
  });

async function seeded(open: StoreKind['open']) {
  const store = await open({ defaultThresholds: [], alerts: { channelsFor: () => ['ops'], projection: false } });
  const alice = (await userWithKey(store, 'alice', 'research')).subject;
  const bob = (await userWithKey(store, 'bob', 'research')).subject;
  // The 24 hours before the last hour: Alice 1,000 tokens an hour, Bob 20,000.
  for (let h = 1; h <= 24; h++) {
    await spend(store, alice, 1_000, NOW - HOUR - h * HOUR + 60_000);
    await spend(store, bob, 20_000, NOW - HOUR - h * HOUR + 60_000);
  }
  // The last hour: Alice 60× her rate, Bob as usual.
  await spend(store, alice, 60_000, NOW - 30 * 60_000);
  await spend(store, bob, 20_000, NOW - 30 * 60_000);
  return { store, alice, bob };
}

const kinds = storeKinds();

describe.each(kinds)('$name store: spike detection (fixed clock)', ({ open }) => {
  it('raises one anomaly per spiking subject, queued for the channels, with the numbers', async () => {
    const { store, alice } = await seeded(open);
    const events = await store.recordSpikes(NOW, CONFIG);
    // Alice and her key spike; Bob does not, nor the project (80,000 against 21,000 an hour: 3.8×).
    expect(events.map((e) => e.scope).sort()).toEqual([`key:${alice.keyId}`, 'user:alice']);
    const user = events.find((e) => e.scope === 'user:alice');
    expect(user).toMatchObject({
      kind: 'anomaly',
      subjectName: 'ALICE',
      usage: 60_000,
      limit: 10_000,
      unit: 'tokens',
      threshold: null,
      anomaly: { lastHourTokens: 60_000, baselineHourlyTokens: 1_000, ratio: 60, baselineHours: 24, factor: 5 },
      topConsumers: [
        { kind: 'user', id: 'alice', usage: 60_000 },
        { kind: 'model', id: 'gpt-4o-mini', usage: 60_000 },
      ],
    });
    expect(describeAlert(user!, 'en', plainText).title).toBe(
      '⚡ ALICE (user:alice): usage in the last hour is 60× the usual hourly rate (baseline 1,000 tokens/h over 24 h)',
    );

    const due = await store.dueDeliveries(NOW, 10);
    expect(due.map((d) => [d.alert.scope, d.channel]).sort()).toEqual([
      [`key:${alice.keyId}`, 'ops'],
      ['user:alice', 'ops'],
    ]);
    const listed = await store.listAlerts({ scope: 'user:alice', limit: 10 });
    expect(listed.map((a) => [a.alert.kind, a.windowStart])).toEqual([['anomaly', T0]]);
    expect(await store.listAlerts({ kind: 'anomaly', limit: 10 })).toHaveLength(2);
    expect(await store.listAlerts({ kind: 'projected', limit: 10 })).toEqual([]);
  });

  it('alerts at most once per subject and clock hour', async () => {
    const { store, alice } = await seeded(open);
    expect(await store.recordSpikes(NOW, CONFIG)).toHaveLength(2);
    await spend(store, alice, 60_000, NOW + 60_000);
    // Alice and her key already alerted this hour; the project only now goes over 5× its rate.
    expect((await store.recordSpikes(NOW + 5 * 60_000, CONFIG)).map((e) => e.scope)).toEqual(['project:research']);
    expect(await store.recordSpikes(NOW + 10 * 60_000, CONFIG)).toEqual([]);
    // 13:05: a new hour, and the spike goes on.
    const later = await store.recordSpikes(T0 + HOUR + 5 * 60_000, CONFIG);
    expect(later.map((e) => e.scope)).toContain('user:alice');
    expect((await store.listAlerts({ scope: 'user:alice', limit: 10 })).map((a) => a.windowStart)).toEqual([T0 + HOUR, T0]);
  });

  it('records nothing when disabled, or when the factor is not reached', async () => {
    const { store } = await seeded(open);
    expect(await store.recordSpikes(NOW, { ...CONFIG, enabled: false })).toEqual([]);
    expect(await store.recordSpikes(NOW, { ...CONFIG, factor: 100 })).toEqual([]);
    expect(await store.listAlerts({ limit: 10 })).toEqual([]);
  });
});
