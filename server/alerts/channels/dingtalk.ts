import { createHmac } from 'node:crypto';
import type { AlertEvent } from '../alert-event.js';
import { describeAlert, type Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { escapeMarkdown, plainText } from './escape.js';
import { jsonAnswer, postJson, VendorError } from './http.js';

export interface DingTalkConfig {
  url: string;
  secret?: string | undefined;
}

export interface DingTalkMessage {
  msgtype: 'markdown';
  markdown: { title: string; text: string };
}

/**
 * A markdown robot message. `title` is what the conversation list and the notification show (plain
 * text); `text` is DingTalk's Markdown: a heading, one list item per fact, the footer as a quote.
 */
export function buildDingTalkMessage(alert: AlertEvent, locale: Locale): DingTalkMessage {
  const md = describeAlert(alert, locale, escapeMarkdown);
  // The colon stays outside the bold: "**对象：**Research" would not close the bold in CommonMark.
  const colon = locale === 'zh' ? '：' : ': ';
  const lines = [`### ${md.title}`, '', ...md.facts.map((f) => `- **${f.label}**${colon}${f.value}`), '', `> ${md.footer}`];
  return { msgtype: 'markdown', markdown: { title: describeAlert(alert, locale, plainText).title, text: lines.join('\n') } };
}

/**
 * DingTalk's signature ("加签"): `sign = base64(HMAC-SHA256(key = secret, message = timestamp + "\n"
 * + secret))`, with `timestamp` in epoch milliseconds. DingTalk refuses a timestamp more than an
 * hour away from its clock.
 */
export const dingTalkSign = (secret: string, timestampMs: number): string =>
  createHmac('sha256', secret).update(`${timestampMs}\n${secret}`, 'utf8').digest('base64');

/** The webhook URL with `&timestamp=…&sign=…` appended (the sign URL-encoded: base64 has `+/=`). */
export function signedDingTalkUrl(url: string, secret: string, timestampMs: number): string {
  const sign = encodeURIComponent(dingTalkSign(secret, timestampMs));
  return `${url}${url.includes('?') ? '&' : '?'}timestamp=${timestampMs}&sign=${sign}`;
}

/** A DingTalk group robot. It answers 200 even for errors, with `errcode` ≠ 0 and `errmsg`. */
export function dingTalkSender(config: DingTalkConfig, ctx: SendContext): Sender {
  return {
    async send(alert) {
      const url = config.secret ? signedDingTalkUrl(config.url, config.secret, ctx.now()) : config.url;
      const answer = await postJson('dingtalk', url, JSON.stringify(buildDingTalkMessage(alert, ctx.locale)), { timeoutMs: ctx.timeoutMs });
      const json = jsonAnswer('dingtalk', url, answer);
      if (json.errcode !== 0) throw new VendorError(`dingtalk: errcode ${String(json.errcode)}: ${String(json.errmsg ?? 'no errmsg')}`);
    },
  };
}
