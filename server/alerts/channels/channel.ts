import type { AlertEvent } from '../alert-event.js';
import type { Locale } from './alert-text.js';

/** One configured destination of alerts. */
export interface Channel {
  /** Stable name used as the delivery key in the outbox: config `name`, else `${type}:${index}`. */
  readonly name: string;
  /**
   * Whether this channel wants the alert: `scopes` (exact 'user:alice' or kind prefix 'user:*' or
   * 'global') and `levels` (threshold percents; 'projected', 'anomaly' and 'overrun' alerts pass
   * when levels is absent or includes 0).
   */
  accepts(alert: AlertEvent): boolean;
  /**
   * Delivers once; throws an Error with a useful message on any failure (non-2xx, vendor error code
   * in the body such as DingTalk/WeCom `errcode != 0` or Feishu `code != 0`, timeout 10 s).
   */
  send(alert: AlertEvent): Promise<void>;
  close?(): Promise<void>;
}

/** What a vendor module needs besides its own config. */
export interface SendContext {
  locale: Locale;
  /** Epoch ms; the signing timestamps of DingTalk and Feishu come from it. */
  now: () => number;
  /** How long one delivery may take before it counts as failed. */
  timeoutMs: number;
}

/** The vendor half of a channel: the delivery, without the routing. */
export interface Sender {
  send(alert: AlertEvent): Promise<void>;
  close?(): Promise<void>;
}
