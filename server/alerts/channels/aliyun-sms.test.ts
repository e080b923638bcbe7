import { afterEach, describe, expect, it } from 'vitest';
import { aliyunSignature, canonicalizedQuery, percentEncode } from './aliyun-sms.js';
import { NOW_MS, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel, type ChannelConfig } from './index.js';
import { unreachableUrl, type Receiver } from './receiver.test-util.js';
import { ALIYUN_KEY_ID, ALIYUN_SECRET, aliyunSignatureValid, aliyunStringToSign, startAliyun } from './sms-receivers.test-util.js';

let receiver: Receiver | null = null;

afterEach(async () => {
  await receiver?.close();
  receiver = null;
});

type AliyunConfig = Extract<ChannelConfig, { type: 'aliyun-sms' }>;

async function aliyun(over: Partial<AliyunConfig> = {}, secret = ALIYUN_SECRET, nowMs = NOW_MS): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startAliyun(NOW_MS);
  const config: AliyunConfig = {
    type: 'aliyun-sms',
    accessKeyId: ALIYUN_KEY_ID,
    accessKeySecretEnv: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
    signName: '阿里云短信测试',
    templateCode: 'SMS_154950909',
    to: ['13800138000', '8613900139000'],
    regionId: 'cn-hangzhou',
    endpoint: receiver.url(''),
    ...over,
  };
  const [channel] = createChannels([config], { locale: 'zh', now: () => nowMs, env: { ALIBABA_CLOUD_ACCESS_KEY_SECRET: secret } });
  return { channel: channel as Channel, receiver };
}

describe('percentEncode', () => {
  it('follows Alibaba Cloud\'s rules: RFC 3986 unreserved kept, space %20, * %2A, ~ kept, UTF-8 bytes', () => {
    expect(percentEncode('A-Z_a.z~09')).toBe('A-Z_a.z~09');
    expect(percentEncode("a b+c*d!e'f(g)h/i=j&k,l:m")).toBe('a%20b%2Bc%2Ad%21e%27f%28g%29h%2Fi%3Dj%26k%2Cl%3Am');
    expect(percentEncode('{"scope":"阿"}')).toBe('%7B%22scope%22%3A%22%E9%98%BF%22%7D');
  });

  it('signs the sorted, encoded query with the secret and "&"', () => {
    const params = { B: 'x y', A: '1', Signature: 'ignored' };
    expect(canonicalizedQuery(params)).toBe('A=1&B=x%20y');
    // Base64(HMAC-SHA1("s&", "GET&%2F&A%3D1%26B%3Dx%2520y")), the string to sign written out by hand.
    expect(aliyunSignature(params, 's')).toBe('vVL3u9c1AUo333PATy17tu1x9Xk=');
  });
});

describe('aliyun-sms', () => {
  it('sends SendSms as a signed GET the service accepts, with the template variables', async () => {
    const { channel, receiver } = await aliyun();
    await channel.send(thresholdAlert({ threshold: 100 }));

    const req = receiver.requests[0]!;
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/');
    expect(aliyunSignatureValid(req, ALIYUN_SECRET)).toBe(true);
    expect(aliyunSignatureValid(req, 'another secret')).toBe(false);
    const { params } = aliyunStringToSign(req);
    expect(Object.fromEntries([...params].filter(([k]) => !['Signature', 'SignatureNonce'].includes(k)))).toEqual({
      AccessKeyId: ALIYUN_KEY_ID,
      Action: 'SendSms',
      Format: 'JSON',
      PhoneNumbers: '13800138000,8613900139000',
      RegionId: 'cn-hangzhou',
      SignName: '阿里云短信测试',
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      TemplateCode: 'SMS_154950909',
      TemplateParam: JSON.stringify({ scope: 'user:alice', name: 'Alice', kind: '阈值', percent: '100%', usage: '80,400/100,000' }),
      Timestamp: '2026-11-22T12:00:00Z',
      Version: '2017-05-25',
    });
    expect(params.get('SignatureNonce')).toMatch(/^[0-9a-f-]{36}$/);
    // The raw query is encoded Alibaba's way: no "+" for spaces, no bare "*", the signature first.
    expect(req.url).toMatch(/^\/\?Signature=[A-Za-z0-9%]+&AccessKeyId=/);
    expect(req.url).not.toMatch(/[+*]/);

    // A second send is a new nonce, accepted too.
    await channel.send(thresholdAlert());
    expect(receiver.requests).toHaveLength(2);
    expect(aliyunStringToSign(receiver.requests[1]!).params.get('SignatureNonce')).not.toBe(params.get('SignatureNonce'));
  });

  it('is refused with a wrong secret; the error quotes the string to sign with every number masked', async () => {
    const { channel } = await aliyun({}, 'wrong-secret');
    const failure = await channel.send(thresholdAlert()).then(
      () => null,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toMatch(/^aliyun-sms: HTTP 400, Code SignatureDoesNotMatch: Specified signature is not matched/);
    expect(failure?.message).toContain('PhoneNumbers%3D');
    expect(failure?.message).not.toMatch(/\d{7}/);
    expect(failure?.message).toContain('*******8000');
    expect(failure?.cause).toBeUndefined();
  });

  it('fails on any Code but OK, even with HTTP 200, and on a stale timestamp', async () => {
    const { channel, receiver } = await aliyun();
    receiver.answer = { status: 200, body: { Code: 'isv.BUSINESS_LIMIT_CONTROL', Message: '触发分钟级流控Permits:1', RequestId: 'x' } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^aliyun-sms: HTTP 200, Code isv\.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1$/);
    receiver.answer = { status: 200, body: '<html>captive portal</html>' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^aliyun-sms: 127\.0\.0\.1:\d+ answered HTTP 200: <html>captive portal<\/html>$/);

    await receiver.close();
    const late = await aliyun({}, ALIYUN_SECRET, NOW_MS + 20 * 60_000);
    await expect(late.channel.send(thresholdAlert())).rejects.toThrow(/Code InvalidTimeStamp\.Expired/);
  });

  it('fails when nothing listens, and will not start without its secret', async () => {
    const base = { type: 'aliyun-sms' as const, accessKeyId: ALIYUN_KEY_ID, signName: 'x', templateCode: 'SMS_1', to: ['13800138000'], regionId: 'cn-hangzhou' };
    const endpoint = (await unreachableUrl()).replace(/\/hook$/, '');
    const [down] = createChannels([{ ...base, accessKeySecretEnv: 'S', endpoint }], { locale: 'en', env: { S: 'x' } });
    await expect(down!.send(thresholdAlert())).rejects.toThrow(/^aliyun-sms: GET to 127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/);
    expect(() => createChannels([{ ...base, accessKeySecretEnv: 'NOPE', endpoint }], { locale: 'en', env: {} })).toThrow(/NOPE, which is not set/);
  });
});
