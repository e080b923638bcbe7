import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Delivery, Store } from '../store/types.js';

/**
 * How many alerts with a pending delivery one scrape reads (newest first). An outbox that far
 * behind is an incident already; the gauges then say "at least" and the oldest age is a lower bound.
 */
export const OUTBOX_SCRAPE_LIMIT = 1_000;

interface ChannelOutbox {
  pending: number;
  failing: number;
  oldestFiredAt: number;
}

/**
 * The alert outbox as Prometheus sees it, read from the store at each scrape like the budget gauges:
 * the outbox is in the database, so every instance reports the same numbers, whichever instance's
 * sender is stuck. Counters in the sender would be per instance and say nothing about alerts that
 * another instance recorded and nobody delivered.
 */
export function registerAlertOutboxGauges(registry: Registry, services: { store: Store; clock: Clock }): void {
  let read: Promise<Map<string, ChannelOutbox>> | null = null;
  // The three gauges' collect callbacks start together: one store read serves them all.
  const sharedRead = () => {
    read ??= readOutbox(services.store).finally(() => {
      read = null;
    });
    return read;
  };
  const gauge = (name: string, help: string, value: (outbox: ChannelOutbox) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['channel'],
      registers: [registry],
      async collect() {
        const byChannel = await sharedRead();
        this.reset();
        for (const [channel, outbox] of byChannel) this.set({ channel }, value(outbox));
      },
    });
  gauge(
    'lobe_quota_alert_deliveries_pending',
    `Alert deliveries not yet accepted by their channel (the outbox, read from the database), by channel; counted over the newest ${OUTBOX_SCRAPE_LIMIT} alerts with one pending.`,
    (o) => o.pending,
  );
  gauge(
    'lobe_quota_alert_deliveries_failing',
    'Pending alert deliveries whose channel refused or failed at least one attempt (retried with backoff), by channel.',
    (o) => o.failing,
  );
  gauge(
    'lobe_quota_alert_oldest_pending_seconds',
    'Age of the oldest pending alert delivery (since the alert fired), by channel; a channel with nothing pending has no series.',
    (o) => Math.max(0, (services.clock.now() - o.oldestFiredAt) / 1000),
  );
}

async function readOutbox(store: Store): Promise<Map<string, ChannelOutbox>> {
  const byChannel = new Map<string, ChannelOutbox>();
  for (const record of await store.listAlerts({ state: 'pending', limit: OUTBOX_SCRAPE_LIMIT })) {
    const firedAt = Date.parse(record.alert.firedAt);
    for (const delivery of record.deliveries.filter(isPending)) {
      const outbox = byChannel.get(delivery.channel) ?? { pending: 0, failing: 0, oldestFiredAt: firedAt };
      outbox.pending++;
      // markDelivered counts the successful attempt too, so a pending delivery's attempts all failed.
      if (delivery.attempts > 0) outbox.failing++;
      outbox.oldestFiredAt = Math.min(outbox.oldestFiredAt, firedAt);
      byChannel.set(delivery.channel, outbox);
    }
  }
  return byChannel;
}

const isPending = (delivery: Delivery) => delivery.state === 'pending';
