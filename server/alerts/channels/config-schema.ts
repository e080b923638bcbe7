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

/** The name of the environment variable that holds a secret: secrets never go in the file. */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable');

/** The language of this channel's texts (default `alerts.locale`): an SMS goes to one person. */
const smsLocale = z.enum(['en', 'zh']).optional().describe('Language of this channel\'s texts (default: alerts.locale).');

const twilioSchema = z
  .strictObject({
    type: z.literal('twilio'),
    accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio Account SID: AC and 32 hex digits'),
    authTokenEnv: envName.default('TWILIO_AUTH_TOKEN').describe('Environment variable holding the account\'s Auth Token'),
    from: z
      .string()
      .regex(/^(\+[1-9]\d{6,14}|[A-Za-z0-9 ]{1,11})$/, 'must be an E.164 number (+15005550006) or an alphanumeric sender id of up to 11 characters')
      .optional()
      .describe('Sender: a Twilio number in E.164 form, or an alphanumeric sender id; or give messagingServiceSid'),
    messagingServiceSid: z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'must be a Messaging Service SID: MG and 32 hex digits').optional(),
    to: z
      .array(z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number: +, country code and number, no spaces'))
      .min(1)
      .max(10)
      .describe('Recipients in E.164 form, one message each'),
    baseUrl: httpUrl.default('https://api.twilio.com').describe('Twilio\'s API (tests point it elsewhere)'),
    locale: smsLocale,
    ...routing,
  })
  .refine((c) => (c.from === undefined) !== (c.messagingServiceSid === undefined), {
    message: 'give exactly one of "from" and "messagingServiceSid"',
    path: ['from'],
  });

const aliyunSmsSchema = z.strictObject({
  type: z.literal('aliyun-sms'),
  accessKeyId: z.string().min(1).max(200),
  accessKeySecretEnv: envName.default('ALIBABA_CLOUD_ACCESS_KEY_SECRET').describe('Environment variable holding the AccessKey secret'),
  signName: z.string().min(1).max(100).describe('The approved signature ("签名") the message is sent under'),
  templateCode: z
    .string()
    .min(1)
    .max(100)
    .describe('The approved template ("SMS_…"); it may use ${scope}, ${name}, ${kind}, ${percent} and ${usage}'),
  to: z
    .array(z.string().regex(/^\+?\d{6,15}$/, 'must be a phone number of digits: 13800138000, or with a country code 8613800138000'))
    .min(1)
    .max(100)
    .describe('Recipients (sent in one request)'),
  regionId: z.string().regex(/^[a-z0-9-]+$/).default('cn-hangzhou'),
  endpoint: httpUrl.default('https://dysmsapi.aliyuncs.com').describe('The Dysmsapi endpoint (tests point it elsewhere)'),
  locale: smsLocale,
  ...routing,
});

/** The environment variables a channel reads its secret from (none for most). */
export function channelSecretEnv(config: ChannelConfig): string | null {
  if (config.type === 'twilio') return config.authTokenEnv;
  if (config.type === 'aliyun-sms') return config.accessKeySecretEnv;
  return null;
}

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
  twilioSchema,
  aliyunSmsSchema,
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
