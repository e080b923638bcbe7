import { createHmac } from 'node:crypto';
import { webhookPayload, type AlertEvent } from '../alert-event.js';
import type { SendContext, Sender } from './channel.js';
import { postJson } from './http.js';

export interface WebhookConfig {
  url: string;
  secret?: string | undefined;
}

export const SIGNATURE_HEADER = 'X-Lobe-Quota-Signature';

/** The exact bytes POSTed: the signature is over this string, so it is built once and sent as is. */
export const buildWebhookBody = (alert: AlertEvent): string => JSON.stringify(webhookPayload(alert));

/**
 * `sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the shared secret (DESIGN). Receivers
 * recompute it over the bytes they received, before parsing, and compare in constant time.
 */
export const webhookSignature = (secret: string, rawBody: string): string =>
  `sha256=${createHmac('sha256', secret).update(rawBody, 'utf8').digest('hex')}`;

/** The generic webhook: the alert as JSON, signed when a secret is set. */
export function webhookSender(config: WebhookConfig, ctx: SendContext): Sender {
  return {
    async send(alert) {
      const body = buildWebhookBody(alert);
      const headers: Record<string, string> = {};
      if (config.secret) headers[SIGNATURE_HEADER] = webhookSignature(config.secret, body);
      await postJson('webhook', config.url, body, { timeoutMs: ctx.timeoutMs, headers });
    },
  };
}
