import { createHmac, randomUUID } from 'node:crypto';
import type { AlertEvent } from '../alert-event.js';
import type { Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { answerExcerpt, hostOf, vendorRequest } from './http.js';
import { maskPhoneNumbers, smsTemplateParams } from './sms-text.js';

export interface AliyunSmsConfig {
  accessKeyId: string;
  /** The AccessKey secret itself, read from the environment variable the config names. */
  accessKeySecret: string;
  /** Recipients, sent in one request (`PhoneNumbers`, comma-separated). */
  to: string[];
  signName: string;
  templateCode: string;
  regionId: string;
  /** https://dysmsapi.aliyuncs.com; tests point it at a local receiver. */
  endpoint: string;
  locale?: Locale | undefined;
}

/**
 * Alibaba Cloud's percent-encoding for signatures: RFC 3986, where only A-Z a-z 0-9 - _ . ~ stay
 * as they are and everything else, UTF-8 encoded, becomes %XY in upper case (a space is %20, never
 * "+"; "*" is %2A). encodeURIComponent leaves ! ' ( ) * alone, so those are encoded here.
 */
export const percentEncode = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);

/** The parameters of one `SendSms` call, signature excluded. */
export function sendSmsParams(config: AliyunSmsConfig, alert: AlertEvent, locale: Locale, nowMs: number, nonce: string): Record<string, string> {
  return {
    AccessKeyId: config.accessKeyId,
    Action: 'SendSms',
    Format: 'JSON',
    PhoneNumbers: config.to.join(','),
    RegionId: config.regionId,
    SignName: config.signName,
    SignatureMethod: 'HMAC-SHA1',
    SignatureNonce: nonce,
    SignatureVersion: '1.0',
    TemplateCode: config.templateCode,
    TemplateParam: JSON.stringify(smsTemplateParams(alert, locale)),
    // yyyy-MM-ddTHH:mm:ssZ in UTC: Alibaba Cloud's format has no milliseconds.
    Timestamp: new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    Version: '2017-05-25',
  };
}

/**
 * The RPC signature, version 1.0, as Alibaba Cloud documents it for SMS
 * (https://www.alibabacloud.com/help/en/sms/signature-method; the same for every RPC API:
 * https://www.alibabacloud.com/help/doc-detail/127287.htm):
 *
 * 1. the canonicalized query: every parameter but Signature, sorted by name, each name and value
 *    percent-encoded (`percentEncode`), joined as `name=value` with "&";
 * 2. StringToSign = "GET&" + percentEncode("/") + "&" + percentEncode(canonicalized query);
 * 3. Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign)).
 */
export function aliyunSignature(params: Record<string, string>, accessKeySecret: string, method: 'GET' | 'POST' = 'GET'): string {
  const stringToSign = `${method}&${percentEncode('/')}&${percentEncode(canonicalizedQuery(params))}`;
  return createHmac('sha1', `${accessKeySecret}&`).update(stringToSign, 'utf8').digest('base64');
}

/** Sorted by name in code-unit order (the parameters are ASCII names), encoded, joined. */
export const canonicalizedQuery = (params: Record<string, string>): string =>
  Object.keys(params)
    .filter((name) => name !== 'Signature')
    .sort()
    .map((name) => `${percentEncode(name)}=${percentEncode(params[name] ?? '')}`)
    .join('&');

/** The signed GET URL: the signature first, then the canonicalized query. */
export function signedSendSmsUrl(endpoint: string, params: Record<string, string>, accessKeySecret: string): string {
  const signature = aliyunSignature(params, accessKeySecret);
  return `${endpoint.replace(/\/+$/, '')}/?Signature=${percentEncode(signature)}&${canonicalizedQuery(params)}`;
}

/**
 * SMS through Alibaba Cloud's Dysmsapi `SendSms` (RPC style, signature version 1.0). The message
 * is a pre-approved template filled with `smsTemplateParams`. Success is `{"Code": "OK"}`; any
 * other Code is a failure, reported with its Code and Message (which may quote the string to
 * sign, phone numbers included: masked like every error text here).
 */
export function aliyunSmsSender(config: AliyunSmsConfig, ctx: SendContext, nonce: () => string = randomUUID): Sender {
  return {
    async send(alert) {
      const params = sendSmsParams(config, alert, config.locale ?? ctx.locale, ctx.now(), nonce());
      const url = signedSendSmsUrl(config.endpoint, params, config.accessKeySecret);
      try {
        const answer = await vendorRequest('aliyun-sms', url, { method: 'GET', headers: { accept: 'application/json' }, timeoutMs: ctx.timeoutMs });
        const result = resultOf(answer.body);
        if (result?.code === 'OK' && answer.status >= 200 && answer.status < 300) return;
        if (result) throw new Error(`aliyun-sms: HTTP ${answer.status}, Code ${result.code}: ${result.message}`);
        throw new Error(`aliyun-sms: ${hostOf(url)} answered HTTP ${answer.status}${answerExcerpt(answer.body)}`);
      } catch (error) {
        // Without `cause`: the error text is all that travels, and it is masked.
        throw new Error(maskPhoneNumbers(error instanceof Error ? error.message : String(error)));
      }
    },
  };
}

/** `{"Code": "OK", "Message": "OK", "BizId": …, "RequestId": …}`, or null when the body is not that. */
function resultOf(body: string): { code: string; message: string } | null {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== 'object' || parsed === null || !('Code' in parsed)) return null;
    const { Code, Message } = parsed as Record<string, unknown>;
    return { code: String(Code), message: answerExcerpt(String(Message ?? '')).slice(2) || 'no Message' };
  } catch {
    return null;
  }
}
