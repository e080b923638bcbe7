import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { AlertSender, type AlertChannel } from '../alerts/alert-sender.js';
import { ManualClock } from '../clock.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { T0, userWithKey } from '../testing/harness.js';
import { Metrics } from './metrics.js';

const open = () =>
  SqliteStore.open({
    file: ':memory:',
    defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' }],
    defaultThresholds: [50, 80, 90, 95, 100],
    alerts: { channelsFor: () => ['ops', 'pager'], projection: false },
  });

const channel = (name: string, works: boolean): AlertChannel => ({
  name,
  async send() {
    if (!works) throw new Error(`${name} is down`);
  },
});

async function gauges(metrics: Metrics) {
  const families = parsePrometheusTextFormat((await metrics.render()).text);
  const byChannel = (name: string) =>
    Object.fromEntries((families.find((f) => f.name === name)?.metrics ?? []).map((m) => [m.labels?.channel, 'value' in m ? Number(m.value) : NaN]));
  return {
    pending: byChannel('lobe_quota_alert_deliveries_pending'),
    failing: byChannel('lobe_quota_alert_deliveries_failing'),
    oldest: byChannel('lobe_quota_alert_oldest_pending_seconds'),
  };
}

describe('alert outbox gauges', () => {
  it('count pending and failing deliveries by channel, and the age of the oldest, from the database', async () => {
    const store = open();
    const clock = new ManualClock(T0);
    const metrics = new Metrics({ store, clock, prices: { priceOf: () => null } });
    expect(await gauges(metrics)).toEqual({ pending: {}, failing: {}, oldest: {} });

    const { subject } = await userWithKey(store, 'alice');
    const spend = (id: string, tokens: number) =>
      store.settle({
        holdId: id,
        subject,
        now: clock.now(),
        usage: { model: 'gpt-4o-mini', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      });
    await spend('r1', 500); // 50 %: one alert, a delivery to each channel
    clock.advance(60_000);
    await spend('r2', 300); // 80 %
    clock.advance(60_000);
    expect(await gauges(metrics)).toEqual({ pending: { ops: 2, pager: 2 }, failing: { ops: 0, pager: 0 }, oldest: { ops: 120, pager: 120 } });

    // ops accepts both; pager fails both, which stay pending and are now failing.
    await new AlertSender({ store, channels: [channel('ops', true), channel('pager', false)], clock }).deliverDue();
    clock.advance(30_000);
    expect(await gauges(metrics)).toEqual({ pending: { pager: 2 }, failing: { pager: 2 }, oldest: { pager: 150 } });
    await store.close();
  });
});
