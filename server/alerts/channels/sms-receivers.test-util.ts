/**
 * Local stand-ins for Twilio and Alibaba Cloud SMS that check credentials as those services do:
 * Twilio's HTTP basic auth, and Alibaba Cloud's RPC signature recomputed from the query received.
 * The signature check is written independently of aliyun-sms.ts (byte-wise encoding, its own
 * parsing of the raw query), so a shared mistake cannot make both agree.
 */
import { createHmac } from 'node:crypto';
import { startReceiver, type Answer, type ReceivedRequest, type Receiver } from './receiver.test-util.js';

export const TWILIO_SID = 'AC0123456789abcdef0123456789abcdef';
export const TWILIO_TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';

/** Twilio's answer to a bad or missing credential. */
const twilioUnauthorized: Answer = {
  status: 401,
  body: { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 },
};

/**
 * Twilio's Create Message: basic auth AccountSid:AuthToken (401 otherwise), the account in the
 * path, a form body with To and Body and one of From / MessagingServiceSid (400, error 21604 etc.
 * otherwise); success is 201 with the message resource.
 */
export function startTwilio(sid = TWILIO_SID, token = TWILIO_TOKEN): Promise<Receiver> {
  const created: Answer = { status: 201, body: { sid: 'SM0123456789abcdef0123456789abcdef', status: 'queued' } };
  return startReceiver(created, (req) => {
    const expected = `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`;
    if (req.headers.authorization !== expected) return twilioUnauthorized;
    if (req.method !== 'POST' || req.path !== `/2010-04-01/Accounts/${sid}/Messages.json`) {
      return { status: 404, body: { code: 20404, message: 'The requested resource was not found', status: 404 } };
    }
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return { status: 400, body: { code: 21601, message: 'Bad content type', status: 400 } };
    const form = new URLSearchParams(req.rawBody.toString('utf8'));
    const to = form.get('To');
    if (!to) return { status: 400, body: { code: 21604, message: "A 'To' phone number is required.", status: 400 } };
    if (!form.get('From') && !form.get('MessagingServiceSid')) return { status: 400, body: { code: 21603, message: "A 'From' phone number is required.", status: 400 } };
    if (!form.get('Body')) return { status: 400, body: { code: 21602, message: 'Message body is required.', status: 400 } };
    if (to === '+15005550001') return { status: 400, body: { code: 21211, message: `The 'To' number ${to} is not a valid phone number.`, status: 400 } };
    return undefined;
  });
}

export const ALIYUN_KEY_ID = 'LTAI5tTestKeyId';
export const ALIYUN_SECRET = 'testSecret/with+chars=';

/** RFC 3986 unreserved characters; everything else is %XY in upper case, byte by byte. */
function encode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The query as the service reads it: name → value, percent-decoded, "+" meaning "+". */
function parseRawQuery(url: string): Map<string, string> {
  const query = url.slice(url.indexOf('?') + 1);
  const params = new Map<string, string>();
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    params.set(decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1)));
  }
  return params;
}

/** Alibaba Cloud's check: the signature over every other parameter, sorted and encoded. */
export function aliyunStringToSign(req: ReceivedRequest): { stringToSign: string; signature: string | undefined; params: Map<string, string> } {
  const params = parseRawQuery(req.url);
  const canonical = [...params.keys()]
    .filter((k) => k !== 'Signature')
    .sort()
    .map((k) => `${encode(k)}=${encode(params.get(k) ?? '')}`)
    .join('&');
  return { stringToSign: `${req.method}&${encode('/')}&${encode(canonical)}`, signature: params.get('Signature'), params };
}

export function aliyunSignatureValid(req: ReceivedRequest, secret: string): boolean {
  const { stringToSign, signature } = aliyunStringToSign(req);
  return signature === createHmac('sha1', `${secret}&`).update(stringToSign).digest('base64');
}

/**
 * Dysmsapi SendSms: the signature recomputed (400 SignatureDoesNotMatch quoting the server's
 * string to sign, as the service does), a known AccessKeyId, a Timestamp within 15 minutes of
 * `nowMs`, a nonce never seen before; then `{"Code": "OK"}`.
 */
export function startAliyun(nowMs: number, keyId = ALIYUN_KEY_ID, secret = ALIYUN_SECRET): Promise<Receiver> {
  const nonces = new Set<string>();
  return startReceiver({ status: 200, body: { Code: 'OK', Message: 'OK', BizId: '900619746936498440^0', RequestId: 'F655A8D5-B967-440B-8683-DAD6FF8DE990' } }, (req) => {
    const { stringToSign, params } = aliyunStringToSign(req);
    if (params.get('AccessKeyId') !== keyId) return { status: 404, body: { Code: 'InvalidAccessKeyId.NotFound', Message: 'Specified access key is not found.' } };
    if (!aliyunSignatureValid(req, secret)) {
      return { status: 400, body: { Code: 'SignatureDoesNotMatch', Message: `Specified signature is not matched with our calculation. server string to sign is:${stringToSign}` } };
    }
    const timestamp = Date.parse(params.get('Timestamp') ?? '');
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(params.get('Timestamp') ?? '') || Math.abs(timestamp - nowMs) > 15 * 60_000) {
      return { status: 400, body: { Code: 'InvalidTimeStamp.Expired', Message: 'Specified time stamp or date value is expired.' } };
    }
    const nonce = params.get('SignatureNonce') ?? '';
    if (nonces.has(nonce)) return { status: 400, body: { Code: 'SignatureNonceUsed', Message: 'Specified signature nonce was used already.' } };
    nonces.add(nonce);
    return undefined;
  });
}
