import { createHmac } from 'node:crypto';
import type { AlertEvent } from '../alert-event.js';
import { describeAlert, type AlertLevel, type Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { plainText } from './escape.js';
import { jsonAnswer, postJson, VendorError } from './http.js';

export interface FeishuConfig {
  url: string;
  secret?: string | undefined;
}

interface PlainText {
  tag: 'plain_text';
  content: string;
}

/** A message card (msg_type "interactive") for a custom bot. */
export interface FeishuCard {
  config: { wide_screen_mode: true };
  header: { template: string; title: PlainText };
  elements: (
    | { tag: 'div'; fields: { is_short: boolean; text: PlainText }[] }
    | { tag: 'hr' }
    | { tag: 'note'; elements: PlainText[] }
  )[];
}

export interface FeishuMessage {
  timestamp?: string;
  sign?: string;
  msg_type: 'interactive';
  card: FeishuCard;
}

const TEMPLATE: Record<AlertLevel, string> = { notice: 'blue', warning: 'yellow', critical: 'orange', exceeded: 'red' };

/**
 * A card with a coloured header and one field per fact. Every text is `plain_text`, which Feishu
 * shows verbatim, so user text needs no escaping beyond staying on its line; the label sits on the
 * field's first line.
 */
export function buildFeishuMessage(alert: AlertEvent, locale: Locale): FeishuMessage {
  const text = describeAlert(alert, locale, plainText);
  const plain = (content: string): PlainText => ({ tag: 'plain_text', content });
  return {
    msg_type: 'interactive',
    card: {
      config: { wide_screen_mode: true },
      header: { template: TEMPLATE[text.level], title: plain(text.title) },
      elements: [
        { tag: 'div', fields: text.facts.map((f) => ({ is_short: f.short, text: plain(`${f.label}\n${f.value}`) })) },
        { tag: 'hr' },
        { tag: 'note', elements: [plain(text.footer)] },
      ],
    },
  };
}

/**
 * Feishu's signature ("签名校验"), which is unlike DingTalk's: the string `timestamp + "\n" + secret`
 * is the HMAC-SHA256 KEY and the message is empty; `sign` is the base64 digest. `timestamp` is in
 * epoch SECONDS, and Feishu refuses one more than an hour away from its clock.
 */
export const feishuSign = (secret: string, timestampSeconds: string): string =>
  createHmac('sha256', `${timestampSeconds}\n${secret}`).update('').digest('base64');

/** A Feishu/Lark custom bot. It reports errors in the body: `code` ≠ 0 (older answers: `StatusCode`). */
export function feishuSender(config: FeishuConfig, ctx: SendContext): Sender {
  return {
    async send(alert) {
      const message = buildFeishuMessage(alert, ctx.locale);
      // The signature goes first in the body, as in Feishu's examples; key order does not matter to it.
      let body: FeishuMessage = message;
      if (config.secret) {
        const timestamp = String(Math.floor(ctx.now() / 1000));
        body = { timestamp, sign: feishuSign(config.secret, timestamp), ...message };
      }
      const answer = await postJson('feishu', config.url, JSON.stringify(body), { timeoutMs: ctx.timeoutMs });
      const json = jsonAnswer('feishu', config.url, answer);
      const code = json.code ?? json.StatusCode;
      if (code !== 0) throw new VendorError(`feishu: code ${String(code)}: ${String(json.msg ?? json.StatusMessage ?? 'no msg')}`);
    },
  };
}
