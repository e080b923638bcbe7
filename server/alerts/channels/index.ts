/**
 * Alert channels: where one alert is delivered. Each vendor module builds its message (a pure
 * function, tested on its own) and sends it; this module routes alerts to channels by scope and
 * level and names each channel for the outbox.
 */
import type { AlertEvent, AlertKind } from '../alert-event.js';
import type { Channel, SendContext, Sender } from './channel.js';
import { aliyunSmsSender } from './aliyun-sms.js';
import { channelName, channelSecretEnv, type ChannelConfig } from './config-schema.js';
import { dingTalkSender } from './dingtalk.js';
import { emailSender } from './email.js';
import { feishuSender } from './feishu.js';
import { slackSender } from './slack.js';
import { twilioSender } from './twilio.js';
import { webhookSender } from './webhook.js';
import { weComSender } from './wecom.js';

export type { Channel } from './channel.js';
export type { Locale } from './alert-text.js';
export { channelConfigSchema, channelConfigsSchema, channelName, channelSecretEnv, type ChannelConfig } from './config-schema.js';

/** How long one delivery may take (DESIGN: the outbox retries it later). */
export const SEND_TIMEOUT_MS = 10_000;

export interface ChannelOptions {
  locale: 'en' | 'zh';
  /** Epoch ms, for the vendors' signing timestamps (default Date.now). */
  now?: () => number;
  /** Per delivery (default SEND_TIMEOUT_MS); tests shorten it. */
  timeoutMs?: number;
  /** Where the SMS channels' secrets are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * One Channel per config, in order. Throws when two end up with the same name, since the outbox
 * could not tell their deliveries apart (the config schema reports that earlier, with its path).
 */
export function createChannels(configs: ChannelConfig[], options: ChannelOptions): Channel[] {
  const ctx: SendContext = { locale: options.locale, now: options.now ?? Date.now, timeoutMs: options.timeoutMs ?? SEND_TIMEOUT_MS };
  const names = new Set<string>();
  return configs.map((config, index) => {
    const name = channelName(config, index);
    if (names.has(name)) throw new Error(`Two alert channels are named "${name}"; give each a distinct "name".`);
    names.add(name);
    const sender = senderFor(config, ctx, options.env ?? process.env);
    const channel: Channel = {
      name,
      accepts: (alert) => acceptsAlert(config, alert),
      send: (alert) => sender.send(alert),
    };
    const close = sender.close;
    if (close) channel.close = () => close.call(sender);
    return channel;
  });
}

/**
 * The secret a channel names in the environment. loadConfig reports an unset one at start; this
 * throw is for callers that build channels from a config of their own.
 */
function secretFrom(env: NodeJS.ProcessEnv, config: ChannelConfig): string {
  const name = channelSecretEnv(config);
  const value = name === null ? undefined : env[name];
  if (!value) throw new Error(`The ${config.type} alert channel reads its secret from the environment variable ${String(name)}, which is not set.`);
  return value;
}

function senderFor(config: ChannelConfig, ctx: SendContext, env: NodeJS.ProcessEnv): Sender {
  switch (config.type) {
    case 'webhook':
      return webhookSender(config, ctx);
    case 'slack':
      return slackSender(config, ctx);
    case 'dingtalk':
      return dingTalkSender(config, ctx);
    case 'wecom':
      return weComSender(config, ctx);
    case 'feishu':
      return feishuSender(config, ctx);
    case 'email':
      return emailSender(config, ctx);
    case 'twilio':
      return twilioSender({ ...config, authToken: secretFrom(env, config) }, ctx);
    case 'aliyun-sms':
      return aliyunSmsSender({ ...config, accessKeySecret: secretFrom(env, config) }, ctx);
  }
}

/**
 * A channel's filter. `scopes`: an exact scope ('user:alice', 'global') or every scope of a kind
 * ('user:*'). `levels`: the threshold percents it wants; projections, spike anomalies and overruns
 * have no threshold and count as level 0. `kinds`: the alert kinds it wants. Any one absent means no
 * filtering on it, with two exceptions for increase requests:
 * - a `request` alert carries signed approve links, so it goes only to a channel that names
 *   `request` in its `kinds`: the admins' channel, never one a user reads (say, one on `user:alice`
 *   for her own warnings, through which she could approve her own request);
 * - a `request_decided` alert goes to a channel that names it, or to one with neither `kinds` nor
 *   `levels` (a channel limited to some levels, such as an SMS one on `[100]`, wants budget alerts).
 */
export function acceptsAlert(filter: { scopes?: string[] | undefined; levels?: number[] | undefined; kinds?: AlertKind[] | undefined }, alert: AlertEvent): boolean {
  if (filter.scopes && !filter.scopes.some((pattern) => scopeMatches(pattern, alert.scope))) return false;
  if (alert.kind === 'request') return filter.kinds?.includes('request') === true;
  if (alert.kind === 'request_decided') return filter.kinds ? filter.kinds.includes('request_decided') : filter.levels === undefined;
  if (filter.kinds && !filter.kinds.includes(alert.kind)) return false;
  if (filter.levels) {
    // Projections, spike anomalies and overruns cross no threshold: level 0 selects them.
    const level = alert.kind === 'threshold' ? alert.threshold : 0;
    if (level === null || !filter.levels.includes(level)) return false;
  }
  return true;
}

function scopeMatches(pattern: string, scope: string): boolean {
  if (pattern.endsWith(':*')) return scope.startsWith(pattern.slice(0, -1)) && scope.length > pattern.length - 1;
  return pattern === scope;
}
