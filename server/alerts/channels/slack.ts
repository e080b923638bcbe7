import type { AlertEvent } from '../alert-event.js';
import { describeAlert, type Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { clip, escapeSlack, plainText } from './escape.js';
import { postJson } from './http.js';

export interface SlackConfig {
  url: string;
}

interface TextObject {
  type: 'plain_text' | 'mrkdwn';
  text: string;
  emoji?: boolean;
}

export type SlackBlock =
  | { type: 'header'; text: TextObject }
  | { type: 'section'; text?: TextObject; fields?: TextObject[] }
  | { type: 'context'; elements: TextObject[] };

/** The body of an incoming-webhook POST. */
export interface SlackMessage {
  /** Shown in notifications and by clients that cannot draw blocks. */
  text: string;
  blocks: SlackBlock[];
}

/** Slack's limits: a header's text, a field's text, and the number of fields in a section. */
const HEADER_MAX = 150;
const FIELD_MAX = 2000;
const FIELDS_MAX = 10;

/**
 * A header with the title, a section of mrkdwn fields (who, budget, usage / limit, percentage,
 * resets, projection, top users and models, fired at) and a context line with the alert id. The
 * header is plain_text, which Slack never parses; everything else is mrkdwn with user text escaped.
 */
export function buildSlackMessage(alert: AlertEvent, locale: Locale): SlackMessage {
  const plain = describeAlert(alert, locale, plainText);
  const md = describeAlert(alert, locale, escapeSlack);
  const fields = md.facts.slice(0, FIELDS_MAX).map(
    (fact): TextObject => ({ type: 'mrkdwn', text: clip(`*${fact.label}*\n${fact.value}`, FIELD_MAX) }),
  );
  return {
    text: md.title,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(plain.title, HEADER_MAX), emoji: true } },
      { type: 'section', fields },
      { type: 'context', elements: [{ type: 'mrkdwn', text: md.footer }] },
    ],
  };
}

/** A Slack incoming webhook: 2xx ("ok") is delivered; Slack reports errors with 4xx and a code. */
export function slackSender(config: SlackConfig, ctx: SendContext): Sender {
  return {
    async send(alert) {
      await postJson('slack', config.url, JSON.stringify(buildSlackMessage(alert, ctx.locale)), { timeoutMs: ctx.timeoutMs });
    },
  };
}
