import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFeishuMessage, type FeishuMessage } from './feishu.js';
import { NOW_MS, projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel } from './index.js';
import { startReceiver, unreachableUrl, type Receiver } from './receiver.test-util.js';

const SECRET = 'qZ3dVf8LKpH2mN0rT6wX1y';

let receiver: Receiver | null = null;

afterEach(async () => {
  await receiver?.close();
  receiver = null;
});

async function feishu(options: { secret?: string; locale?: 'en' | 'zh' } = {}): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startReceiver({ status: 200, body: { code: 0, msg: 'success', data: {} } });
  const config = { type: 'feishu' as const, url: receiver.url('/open-apis/bot/v2/hook/0000-hook-id'), ...(options.secret ? { secret: options.secret } : {}) };
  const [channel] = createChannels([config], { locale: options.locale ?? 'en', now: () => NOW_MS });
  return { channel: channel as Channel, receiver };
}

/**
 * Feishu's check, from its docs: the string timestamp + "\n" + secret is the HMAC-SHA256 key, the
 * message is empty, and the base64 digest must equal `sign`; `timestamp` is in seconds and must be
 * within an hour of now.
 */
function feishuAccepts(body: { timestamp?: unknown; sign?: unknown }, secret: string, nowMs: number): boolean {
  if (typeof body.timestamp !== 'string' || typeof body.sign !== 'string' || !/^\d+$/.test(body.timestamp)) return false;
  if (Math.abs(nowMs / 1000 - Number(body.timestamp)) > 3600) return false;
  return createHmac('sha256', `${body.timestamp}\n${secret}`).update(Buffer.alloc(0)).digest('base64') === body.sign;
}

const fieldTexts = (message: FeishuMessage): string[] =>
  message.card.elements.flatMap((e) => (e.tag === 'div' ? e.fields.map((f) => f.text.content) : []));

describe('feishu', () => {
  it('POSTs an interactive card signed in the body as Feishu documents', async () => {
    const { channel, receiver } = await feishu({ secret: SECRET });
    await channel.send(thresholdAlert());

    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/open-apis/bot/v2/hook/0000-hook-id');
    expect(req.headers['content-type']).toBe('application/json');
    const body = JSON.parse(req.rawBody.toString('utf8')) as FeishuMessage;
    expect(Object.keys(body).sort()).toEqual(['card', 'msg_type', 'sign', 'timestamp']);
    expect(body.timestamp).toBe(String(Math.floor(NOW_MS / 1000)));
    expect(feishuAccepts(body, SECRET, NOW_MS)).toBe(true);
    expect(feishuAccepts(body, 'wrong secret', NOW_MS)).toBe(false);
    // DingTalk's scheme (secret as key, timestamp + "\n" + secret as message) must not pass.
    expect(createHmac('sha256', SECRET).update(`${body.timestamp}\n${SECRET}`).digest('base64')).not.toBe(body.sign);

    expect(body.msg_type).toBe('interactive');
    expect(body.card.header).toEqual({ template: 'yellow', title: { tag: 'plain_text', content: '🟡 Alice (user:alice) reached 80% of the monthly budget' } });
    expect(body.card.elements.map((e) => e.tag)).toEqual(['div', 'hr', 'note']);
    expect(fieldTexts(body)).toEqual([
      'Who\nAlice (user:alice)',
      'Budget\nmonthly, Asia/Shanghai time',
      'Usage\n80,400 / 100,000 tokens',
      'Used\n80.4% (threshold 80%)',
      'Resets\n2026-12-01 00:00 UTC+08:00',
      'Top users\nalice (80,400 tokens)',
      'Top models\ngpt-4o-mini (60,000 tokens), gpt-4o (20,400 tokens)',
      'Fired at\n2026-11-22 20:00 UTC+08:00',
    ]);
    const div = body.card.elements[0];
    expect(div?.tag === 'div' && div.fields.every((f) => f.text.tag === 'plain_text')).toBe(true);
    expect(body.card.elements[2]).toEqual({ tag: 'note', elements: [{ tag: 'plain_text', content: 'lobe-quota · alert alt_01' }] });
  });

  it('sends no timestamp or sign without a secret', async () => {
    const { channel, receiver } = await feishu();
    await channel.send(thresholdAlert());
    const body = JSON.parse(receiver.requests[0]!.rawBody.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['card', 'msg_type']);
  });

  it('writes Chinese, in a red card once the budget is used up', () => {
    const message = buildFeishuMessage(thresholdAlert({ threshold: 100, percentage: 100.3, usage: 100_300 }), 'zh');
    expect(message.card.header).toEqual({ template: 'red', title: { tag: 'plain_text', content: '🔴 Alice（user:alice）已用到每月预算的 100%' } });
    expect(fieldTexts(message)).toContain('用量\n100,300 / 100,000 tokens');
    expect(fieldTexts(message)).toContain('重置时间\n2026-12-01 00:00 UTC+08:00');
    expect(fieldTexts(buildFeishuMessage(projectedAlert(), 'zh'))).toContain('预计用完时间\n2026-11-22 20:30 UTC+01:00');
  });

  it('shows user text verbatim (plain_text), on one line', () => {
    const message = buildFeishuMessage(thresholdAlert({ subjectName: '**x** <at id=all></at>\nline' }), 'en');
    expect(fieldTexts(message)[0]).toBe('Who\n**x** <at id=all></at> line (user:alice)');
  });

  it('throws with Feishu\'s code and msg when a 200 reports an error', async () => {
    const { channel, receiver } = await feishu({ secret: SECRET });
    receiver.answer = { status: 200, body: { code: 19021, msg: 'sign match fail or timestamp is not within one hour from current time', data: {} } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow('feishu: code 19021: sign match fail or timestamp is not within one hour from current time');
  });

  it('understands the older StatusCode answer', async () => {
    const { channel, receiver } = await feishu();
    receiver.answer = { status: 200, body: { Extra: null, StatusCode: 0, StatusMessage: 'success' } };
    await channel.send(thresholdAlert());
    receiver.answer = { status: 200, body: { StatusCode: 9499, StatusMessage: 'Bad Request' } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow('feishu: code 9499: Bad Request');
  });

  it('throws on a 500 and when nothing listens', async () => {
    const { channel, receiver } = await feishu();
    receiver.answer = { status: 500, body: { code: 9499, msg: 'internal' } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^feishu: 127\.0\.0\.1:\d+ answered HTTP 500/);
    const [down] = createChannels([{ type: 'feishu', url: await unreachableUrl() }], { locale: 'en' });
    await expect(down!.send(thresholdAlert())).rejects.toThrow(/^feishu: POST to .* failed: .*ECONNREFUSED/);
  });
});
