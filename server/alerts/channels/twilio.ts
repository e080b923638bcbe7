import type { Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { answerExcerpt, hostOf, vendorRequest } from './http.js';
import { maskPhoneNumber, maskPhoneNumbers, smsText } from './sms-text.js';

export interface TwilioConfig {
  accountSid: string;
  /** The auth token itself, read from the environment variable the config names. */
  authToken: string;
  to: string[];
  /** A Twilio number or alphanumeric sender id; or else `messagingServiceSid`. */
  from?: string | undefined;
  messagingServiceSid?: string | undefined;
  /** https://api.twilio.com; tests point it at a local receiver. */
  baseUrl: string;
  locale?: Locale | undefined;
}

/**
 * The form body of Twilio's Create Message
 * (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`): one recipient per message.
 */
export function twilioForm(config: Pick<TwilioConfig, 'from' | 'messagingServiceSid'>, to: string, body: string): string {
  const form = new URLSearchParams({ To: to, Body: body });
  if (config.messagingServiceSid) form.set('MessagingServiceSid', config.messagingServiceSid);
  else if (config.from) form.set('From', config.from);
  return form.toString();
}

/**
 * SMS through Twilio's REST API, with HTTP basic auth (AccountSid:AuthToken). Twilio answers 201
 * with the message; an error is a 4xx/5xx with `{code, message}`.
 *
 * Each number is one message. A failure stops the delivery and the outbox retries it whole, so
 * the numbers before the failing one may get the alert twice (at least once, as every channel).
 */
export function twilioSender(config: TwilioConfig, ctx: SendContext): Sender {
  const url = `${config.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(config.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${config.accountSid}:${config.authToken}`, 'utf8').toString('base64')}`;
  return {
    async send(alert) {
      const body = smsText(alert, config.locale ?? ctx.locale);
      for (const [index, to] of config.to.entries()) {
        try {
          await sendOne(url, authorization, twilioForm(config, to, body), ctx.timeoutMs);
        } catch (error) {
          const sent = index === 0 ? '' : ` (sent to ${index} of ${config.to.length} before)`;
          // Without `cause`: the error text is all that travels, and it is masked.
          throw new Error(maskPhoneNumbers(`to ${maskPhoneNumber(to)}${sent}: ${error instanceof Error ? error.message : String(error)}`));
        }
      }
    },
  };
}

async function sendOne(url: string, authorization: string, form: string, timeoutMs: number): Promise<void> {
  const answer = await vendorRequest('twilio', url, {
    method: 'POST',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization, accept: 'application/json' },
    timeoutMs,
  });
  if (answer.status >= 200 && answer.status < 300) return;
  const error = twilioError(answer.body);
  if (error) throw new Error(`twilio: HTTP ${answer.status}, error ${error.code}: ${error.message}`);
  throw new Error(`twilio: ${hostOf(url)} answered HTTP ${answer.status}${answerExcerpt(answer.body)}`);
}

/** Twilio's error body, `{"code": 20003, "message": "Authenticate", "more_info": …, "status": 401}`. */
function twilioError(body: string): { code: string; message: string } | null {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { code, message } = parsed as Record<string, unknown>;
    if (code === undefined && message === undefined) return null;
    return { code: String(code ?? '?'), message: answerExcerpt(String(message ?? '')).slice(2) || 'no message' };
  } catch {
    return null;
  }
}
