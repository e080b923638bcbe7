import type { Clock } from '../clock.js';
import type { Store } from '../store/types.js';
import type { AlertEvent } from './alert-event.js';
import { maskPhoneNumbers } from './channels/sms-text.js';

/** What the sender needs of a channel (see channels/index.ts). */
export interface AlertChannel {
  readonly name: string;
  send(alert: AlertEvent): Promise<void>;
}

export interface AlertSenderOptions {
  store: Store;
  channels: readonly AlertChannel[];
  clock: Clock;
  /** First retry after this long, doubling each time up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Deliveries taken per pass. */
  batch?: number;
}

/** Exponential backoff: base, 2×base, 4×base, … capped. `attempts` counts the failures so far. */
export const retryDelayMs = (attempts: number, baseMs: number, maxMs: number): number => Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));

/**
 * Delivers the outbox: every pending delivery that is due goes to its channel; a success is marked
 * delivered (never sent again), a failure keeps its error and is retried later with backoff. A
 * restart loses nothing, since the outbox is in the database. A crash between a channel accepting
 * an alert and it being marked delivered sends that one again: at least once, never silently lost.
 *
 * A pass runs when the store records an alert (`wake`, so it leaves at once) and on a timer (for
 * retries, and for alerts that other instances recorded); one pass at a time.
 */
export class AlertSender {
  private readonly channels: Map<string, AlertChannel>;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly batch: number;
  private pass: Promise<number> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** A wake-up's pass is scheduled (for the next turn of the event loop). */
  private woken = false;
  /** Woken during a pass, which may have read the outbox before the new alert was in it: one more. */
  private again = false;
  private stopped = false;

  constructor(private readonly options: AlertSenderOptions) {
    this.channels = new Map(options.channels.map((c) => [c.name, c]));
    this.baseDelayMs = options.baseDelayMs ?? 5_000;
    this.maxDelayMs = options.maxDelayMs ?? 15 * 60_000;
    this.batch = options.batch ?? 100;
  }

  /** One pass over what is due now; returns how many were delivered. Passes never overlap. */
  deliverDue(): Promise<number> {
    this.pass ??= this.runPass().finally(() => {
      this.pass = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
    return this.pass;
  }

  /**
   * An alert was just recorded: deliver it now rather than at the next poll. Wake-ups coalesce: the
   * burst of one turn of the event loop makes one pass, a turn later (never inside the store's own
   * commit), and those during a pass make one more after it.
   */
  wake(): void {
    if (this.stopped) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    if (this.woken) return;
    this.woken = true;
    setImmediate(() => {
      this.woken = false;
      if (!this.stopped) this.deliverInBackground();
    });
  }

  private deliverInBackground(): void {
    this.deliverDue().catch((error: unknown) => console.error('[lobe-quota] alert delivery failed:', error));
  }

  private async runPass(): Promise<number> {
    const { store, clock } = this.options;
    let delivered = 0;
    for (const due of await store.dueDeliveries(clock.now(), this.batch)) {
      const channel = this.channels.get(due.channel);
      try {
        if (!channel) throw new Error(`channel "${due.channel}" is not configured any more`);
        await channel.send(due.alert);
        await store.markDelivered(due.alert.id, due.channel, clock.now());
        delivered++;
      } catch (error) {
        // Stored, shown by GET /admin/alerts and logged: no phone number goes there whole, whichever
        // channel failed (the SMS channels mask their own errors; this catches any other path).
        const message = maskPhoneNumbers(error instanceof Error ? error.message : String(error));
        const failures = due.attempts + 1;
        await store.markDeliveryFailed(due.alert.id, due.channel, message, clock.now() + retryDelayMs(failures, this.baseDelayMs, this.maxDelayMs));
      }
    }
    return delivered;
  }

  /** Runs a pass every `intervalMs` in the background, besides those `wake` starts. */
  start(intervalMs: number): void {
    this.timer ??= setInterval(() => this.deliverInBackground(), intervalMs);
    this.timer.unref();
  }

  /** No pass starts after this; the one under way is awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }
}
