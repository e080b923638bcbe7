import { afterEach, describe, expect, it } from 'vitest';
import { projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel } from './index.js';
import { startReceiver, unreachableUrl, type Receiver } from './receiver.test-util.js';
import { buildWeComMessage, WECOM_MAX_BYTES, type WeComMessage } from './wecom.js';

let receiver: Receiver | null = null;

afterEach(async () => {
  await receiver?.close();
  receiver = null;
});

async function wecom(locale: 'en' | 'zh' = 'en'): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startReceiver({ status: 200, body: { errcode: 0, errmsg: 'ok' } });
  const [channel] = createChannels([{ type: 'wecom', url: receiver.url('/cgi-bin/webhook/send?key=k-123') }], { locale });
  return { channel: channel as Channel, receiver };
}

describe('wecom', () => {
  it('POSTs a markdown message with WeCom font colours', async () => {
    const { channel, receiver } = await wecom();
    await channel.send(thresholdAlert({ percentage: 96.2, threshold: 95, usage: 96_200 }));

    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/cgi-bin/webhook/send?key=k-123');
    expect(req.headers['content-type']).toBe('application/json');
    const body = JSON.parse(req.rawBody.toString('utf8')) as WeComMessage;
    expect(Object.keys(body).sort()).toEqual(['markdown', 'msgtype']);
    expect(body.msgtype).toBe('markdown');
    expect(Object.keys(body.markdown)).toEqual(['content']);
    expect(body.markdown.content.split('\n')).toEqual([
      '**<font color="warning">🟠 Alice (user:alice) reached 95% of the monthly budget</font>**',
      '> <font color="comment">Who: </font>Alice (user:alice)',
      '> <font color="comment">Budget: </font>monthly, Asia/Shanghai time',
      '> <font color="comment">Usage: </font>96,200 / 100,000 tokens',
      '> <font color="comment">Used: </font>96.2% (threshold 95%)',
      '> <font color="comment">Resets: </font>2026-12-01 00:00 UTC+08:00',
      '> <font color="comment">Top users: </font>alice (80,400 tokens)',
      '> <font color="comment">Top models: </font>gpt-4o-mini (60,000 tokens), gpt-4o (20,400 tokens)',
      '> <font color="comment">Fired at: </font>2026-11-22 20:00 UTC+08:00',
      '<font color="comment">lobe-quota · alert alt_01</font>',
    ]);
  });

  it('writes Chinese', async () => {
    const { channel, receiver } = await wecom('zh');
    await channel.send(projectedAlert());
    const { markdown } = JSON.parse(receiver.requests[0]!.rawBody.toString('utf8')) as WeComMessage;
    expect(markdown.content).toContain('📈 Research（project:research）的每日预算预计将在重置前用完');
    expect(markdown.content).toContain('> <font color="comment">预计用完时间：</font>2026-11-22 20:30 UTC+01:00');
    expect(markdown.content).toContain('> <font color="comment">用量最多的模型：</font>o3（$31.25）');
  });

  it('cannot be given a font tag or a heading through user text', () => {
    const { markdown } = buildWeComMessage(thresholdAlert({ subjectName: '<font color="info">all good</font>\n# fine' }), 'en');
    expect(markdown.content).toContain('&lt;font color="info"&gt;all good&lt;/font&gt; \\# fine (user:alice)');
    expect(markdown.content.match(/<font/g)).toHaveLength(10);
  });

  it('stays within WeCom\'s 4096 bytes', () => {
    const topConsumers = Array.from({ length: 40 }, (_, i) => ({ kind: i % 2 ? ('user' as const) : ('model' as const), id: `模型-${'长'.repeat(120)}-${i}`, usage: 1000 - i }));
    const { markdown } = buildWeComMessage(thresholdAlert({ subjectName: '名'.repeat(500), topConsumers }), 'zh');
    expect(Buffer.byteLength(markdown.content, 'utf8')).toBeLessThanOrEqual(WECOM_MAX_BYTES);
    expect(markdown.content).toContain('lobe-quota · 告警');
  });

  it('throws with WeCom\'s errcode and errmsg when a 200 reports an error', async () => {
    const { channel, receiver } = await wecom();
    receiver.answer = { status: 200, body: { errcode: 93000, errmsg: 'invalid webhook url, hint: [1700000000_1_abc]' } };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^wecom: errcode 93000: invalid webhook url/);
  });

  it('throws on a 500 and when nothing listens', async () => {
    const { channel, receiver } = await wecom();
    receiver.answer = { status: 500, body: 'Internal Server Error' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^wecom: 127\.0\.0\.1:\d+ answered HTTP 500: Internal Server Error$/);
    const [down] = createChannels([{ type: 'wecom', url: await unreachableUrl() }], { locale: 'en' });
    await expect(down!.send(thresholdAlert())).rejects.toThrow(/^wecom: POST to .* failed: .*ECONNREFUSED/);
  });
});
