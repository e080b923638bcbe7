import type { AlertEvent } from '../alert-event.js';
import { describeAlert, type AlertLevel, type Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { escapeMarkdown } from './escape.js';
import { jsonAnswer, postJson, VendorError } from './http.js';

export interface WeComConfig {
  url: string;
}

export interface WeComMessage {
  msgtype: 'markdown';
  markdown: { content: string };
}

/** WeCom's markdown knows three font colours: warning (orange), info (green), comment (grey). */
const COLOUR: Record<AlertLevel, 'warning' | 'info'> = { notice: 'info', warning: 'warning', critical: 'warning', exceeded: 'warning' };

/** WeCom refuses markdown content over 4096 bytes of UTF-8. */
export const WECOM_MAX_BYTES = 4096;

/**
 * A markdown message in WeCom's own style: a bold coloured title, then one quoted line per fact with
 * the label in grey, then the footer in grey.
 */
export function buildWeComMessage(alert: AlertEvent, locale: Locale): WeComMessage {
  const md = describeAlert(alert, locale, escapeMarkdown);
  const colon = locale === 'zh' ? '：' : ': ';
  const lines = [
    `**<font color="${COLOUR[md.level]}">${md.title}</font>**`,
    ...md.facts.map((f) => `> <font color="comment">${f.label}${colon}</font>${f.value}`),
    `<font color="comment">${md.footer}</font>`,
  ];
  return { msgtype: 'markdown', markdown: { content: fitBytes(lines, WECOM_MAX_BYTES) } };
}

/** Drops whole lines from the end (before the footer) until the content fits; never cuts a tag. */
function fitBytes(lines: string[], max: number): string {
  const kept = [...lines];
  while (kept.length > 2 && Buffer.byteLength(kept.join('\n'), 'utf8') > max) kept.splice(kept.length - 2, 1);
  return kept.join('\n');
}

/** A WeCom group robot. It answers 200 even for errors, with `errcode` ≠ 0 and `errmsg`. */
export function weComSender(config: WeComConfig, ctx: SendContext): Sender {
  return {
    async send(alert) {
      const answer = await postJson('wecom', config.url, JSON.stringify(buildWeComMessage(alert, ctx.locale)), { timeoutMs: ctx.timeoutMs });
      const json = jsonAnswer('wecom', config.url, answer);
      if (json.errcode !== 0) throw new VendorError(`wecom: errcode ${String(json.errcode)}: ${String(json.errmsg ?? 'no errmsg')}`);
    },
  };
}
