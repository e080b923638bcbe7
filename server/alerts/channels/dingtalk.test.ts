import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDingTalkMessage, type DingTalkMessage } from './dingtalk.js';
import { NOW_MS, projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel } from './index.js';
import { startReceiver, unreachableUrl, type Receiver } from './receiver.test-util.js';

const SECRET = 'SECb1e0c3a2f9d84e7ab5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8';

let receiver: Receiver | null = null;

afterEach(async () => {
  await receiver?.close();
  receiver = null;
});

async function dingtalk(options: { secret?: string; locale?: 'en' | 'zh' } = {}): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startReceiver({ status: 200, body: { errcode: 0, errmsg: 'ok' } });
  const url = receiver.url('/robot/send?access_token=abc123');
  const config = { type: 'dingtalk' as const, url, ...(options.secret ? { secret: options.secret } : {}) };
  const [channel] = createChannels([config], { locale: options.locale ?? 'en', now: () => NOW_MS });
  return { channel: channel as Channel, receiver };
}

/**
 * DingTalk's check, from its docs: take `timestamp` and `sign` from the query, compute
 * base64(HMAC-SHA256(secret, timestamp + "\n" + secret)) and compare; the timestamp must be within
 * an hour of now.
 */
function dingTalkAccepts(query: URLSearchParams, secret: string, nowMs: number): boolean {
  const timestamp = query.get('timestamp');
  const sign = query.get('sign');
  if (timestamp === null || sign === null || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(nowMs - Number(timestamp)) > 3_600_000) return false;
  return createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64') === sign;
}

describe('dingtalk', () => {
  it('POSTs a markdown message to a URL signed as DingTalk documents', async () => {
    const { channel, receiver } = await dingtalk({ secret: SECRET });
    await channel.send(thresholdAlert());

    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/robot/send');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.query.get('access_token')).toBe('abc123');
    expect(req.query.get('timestamp')).toBe(String(NOW_MS));
    expect(dingTalkAccepts(req.query, SECRET, NOW_MS)).toBe(true);
    expect(dingTalkAccepts(req.query, 'SECwrong', NOW_MS)).toBe(false);
    // The sign is URL-encoded in the raw query: base64's "+", "/" and "=" never appear bare.
    const rawSign = /[?&]sign=([^&]*)/.exec(req.url)?.[1] ?? '';
    expect(rawSign).not.toMatch(/[+/=]/);
    expect(decodeURIComponent(rawSign)).toBe(req.query.get('sign'));

    const body = JSON.parse(req.rawBody.toString('utf8')) as DingTalkMessage;
    expect(Object.keys(body).sort()).toEqual(['markdown', 'msgtype']);
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.title).toBe('🟡 Alice (user:alice) reached 80% of the monthly budget');
    expect(body.markdown.text.split('\n')).toEqual([
      '### 🟡 Alice (user:alice) reached 80% of the monthly budget',
      '',
      '- **Who**: Alice (user:alice)',
      '- **Budget**: monthly, Asia/Shanghai time',
      '- **Usage**: 80,400 / 100,000 tokens',
      '- **Used**: 80.4% (threshold 80%)',
      '- **Resets**: 2026-12-01 00:00 UTC+08:00',
      '- **Top users**: alice (80,400 tokens)',
      '- **Top models**: gpt-4o-mini (60,000 tokens), gpt-4o (20,400 tokens)',
      '- **Fired at**: 2026-11-22 20:00 UTC+08:00',
      '',
      '> lobe-quota · alert alt_01',
    ]);
  });

  it('adds no timestamp or sign without a secret', async () => {
    const { channel, receiver } = await dingtalk();
    await channel.send(thresholdAlert());
    expect(receiver.requests[0]!.url).toBe('/robot/send?access_token=abc123');
  });

  it('writes Chinese, with the projection', () => {
    const { markdown } = buildDingTalkMessage(projectedAlert(), 'zh');
    expect(markdown.title).toBe('📈 Research（project:research）的每日预算预计将在重置前用完');
    expect(markdown.text).toContain('- **用量**：$31.25 / $50.00');
    expect(markdown.text).toContain('- **预算**：每日（时区 Europe/Berlin）');
    expect(markdown.text).toContain('- **预计用完时间**：2026-11-22 20:30 UTC+01:00');
    expect(markdown.text).toContain('- **用量最多的用户**：bob（$20.00）、alice（$11.25）');
  });

  it('escapes Markdown and HTML in user text', () => {
    const { markdown } = buildDingTalkMessage(thresholdAlert({ subjectName: '**Boss** [x](http://e) <font>\n# hi' }), 'en');
    expect(markdown.text).toContain('- **Who**: \\*\\*Boss\\*\\* \\[x\\]\\(http://e\\) &lt;font&gt; \\# hi (user:alice)');
    // The notification title is plain text: shown as typed, on one line.
    expect(markdown.title).toBe('🟡 **Boss** [x](http://e) <font> # hi (user:alice) reached 80% of the monthly budget');
  });

  it('throws with DingTalk\'s errcode and errmsg when a 200 reports an error', async () => {
    const { channel, receiver } = await dingtalk({ secret: SECRET });
    receiver.answer = { status: 200, body: { errcode: 310000, errmsg: 'sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]' } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^dingtalk: errcode 310000: sign not match/);
  });

  it('throws on an answer that is not DingTalk\'s, a 500, or nothing listening', async () => {
    const { channel, receiver } = await dingtalk();
    receiver.answer = { status: 200, body: '<html>captive portal</html>' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/not a JSON object: <html>captive portal<\/html>$/);
    receiver.answer = { status: 500, body: { errcode: -1, errmsg: 'system busy' } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/answered HTTP 500: \{"errcode":-1,"errmsg":"system busy"\}$/);
    const [down] = createChannels([{ type: 'dingtalk', url: await unreachableUrl(), secret: SECRET }], { locale: 'en' });
    await expect(down!.send(thresholdAlert())).rejects.toThrow(/^dingtalk: POST to .* failed: .*ECONNREFUSED/);
  });
});
