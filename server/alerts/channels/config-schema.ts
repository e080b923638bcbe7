import { z } from 'zod';
import { subjectIdSchema } from '../../quota/budget-schema.js';
import { smtpOptions } from './email.js';

/** `global`, `user:alice` (exact) or `user:*` (every subject of a kind). */
const scopePatternSchema = z.string().refine(
  (s) => {
    if (s === 'global') return true;
    const match = /^(user|project|key):(.+)$/s.exec(s);
    return match !== null && (match[2] === '*' || subjectIdSchema.safeParse(match[2]).success);
  },
  { message: 'must be "global", "KIND:ID" or "KIND:*" with KIND user, project or key' },
);

const routing = {
  name: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe('Names this channel in the outbox and in GET /admin/alerts (default "TYPE:INDEX"); keep it when editing the list.'),
  scopes: z
    .array(scopePatternSchema)
    .min(1)
    .optional()
    .describe('Only alerts of these scopes: "global", "user:alice", "user:*", "project:*", … (default: all).'),
  levels: z
    .array(z.number().int().min(0).max(1000))
    .min(1)
    .optional()
    .describe('Only these thresholds (percent); 0 stands for projected-exhaustion, spike (anomaly) and overrun alerts (default: all). Increase requests have no level and pass it.'),
  kinds: z
    .array(z.enum(['threshold', 'projected', 'anomaly', 'overrun', 'request', 'request_decided']))
    .min(1)
    .optional()
    .describe('Only these kinds of alert, e.g. ["request"] for increase requests with their approve and deny links (default: all).'),
};

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const secret = z.string().min(1).max(1000);

/** `alerts@example.com` or `lobe-quota <alerts@example.com>`. */
const fromSchema = z
  .string()
  .max(320)
  .refine(
    (s) => {
      const address = /^[^<>]*<([^<>]+)>$/.exec(s.trim())?.[1] ?? s.trim();
      return z.email().safeParse(address).success;
    },
    { message: 'must be an e-mail address, optionally with a name: "lobe-quota <alerts@example.com>"' },
  );

const smtpUrl = z.string().superRefine((value, ctx) => {
  try {
    smtpOptions(value, 10_000);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
  }
});

/** One entry of `alerts.channels` in the config file. */
export const channelConfigSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('webhook'), url: httpUrl, secret: secret.optional().describe('HMAC-SHA256 key of X-Lobe-Quota-Signature'), ...routing }),
  z.strictObject({ type: z.literal('slack'), url: httpUrl.describe('Slack incoming-webhook URL'), ...routing }),
  z.strictObject({
    type: z.literal('dingtalk'),
    url: httpUrl.describe('https://oapi.dingtalk.com/robot/send?access_token=…'),
    secret: secret.optional().describe('The robot\'s signing secret ("加签", SEC…)'),
    ...routing,
  }),
  z.strictObject({ type: z.literal('wecom'), url: httpUrl.describe('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…'), ...routing }),
  z.strictObject({
    type: z.literal('feishu'),
    url: httpUrl.describe('https://open.feishu.cn/open-apis/bot/v2/hook/… (or open.larksuite.com)'),
    secret: secret.optional().describe('The bot\'s signature secret ("签名校验")'),
    ...routing,
  }),
  z.strictObject({
    type: z.literal('email'),
    smtp: smtpUrl.describe('smtp://user:pass@host:587 or smtps://user:pass@host:465; ?requireTLS=true, ?ignoreTLS=true, ?tls.rejectUnauthorized=false'),
    from: fromSchema,
    to: z.array(z.email()).min(1).max(100),
    ...routing,
  }),
]);

export type ChannelConfig = z.output<typeof channelConfigSchema>;

/** `alerts.channels`: the list, whose names must be unique (they key deliveries in the outbox). */
export const channelConfigsSchema = z.array(channelConfigSchema).superRefine((configs, ctx) => {
  const seen = new Set<string>();
  configs.forEach((config, index) => {
    const name = channelName(config, index);
    if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `two channels are named "${name}"` });
    seen.add(name);
  });
});

/** The delivery key of a channel: its `name`, else `${type}:${index}` (index in `alerts.channels`). */
export const channelName = (config: ChannelConfig, index: number): string => config.name ?? `${config.type}:${index}`;
