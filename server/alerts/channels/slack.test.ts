import { afterEach, describe, expect, it } from 'vitest';
import { projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel } from './index.js';
import { startReceiver, unreachableUrl, type Receiver } from './receiver.test-util.js';
import { buildSlackMessage, type SlackMessage } from './slack.js';

let receiver: Receiver | null = null;

afterEach(async () => {
  await receiver?.close();
  receiver = null;
});

async function slack(locale: 'en' | 'zh' = 'en'): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startReceiver({ status: 200, body: 'ok' });
  const [channel] = createChannels([{ type: 'slack', url: receiver.url('/services/T000/B000/XXXX') }], { locale });
  return { channel: channel as Channel, receiver };
}

const fieldTexts = (message: SlackMessage): string[] =>
  message.blocks.flatMap((b) => (b.type === 'section' ? (b.fields ?? []).map((f) => f.text) : []));

describe('slack', () => {
  it('POSTs { text, blocks } to the incoming webhook', async () => {
    const { channel, receiver } = await slack();
    await channel.send(thresholdAlert());

    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/services/T000/B000/XXXX');
    expect(req.headers['content-type']).toBe('application/json');
    const body = JSON.parse(req.rawBody.toString('utf8')) as SlackMessage;
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toBe('🟡 Alice (user:alice) reached 80% of the monthly budget');
    expect(body.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect(body.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: '🟡 Alice (user:alice) reached 80% of the monthly budget', emoji: true },
    });
    const fields = fieldTexts(body);
    expect(fields).toEqual([
      '*Who*\nAlice (user:alice)',
      '*Budget*\nmonthly, Asia/Shanghai time',
      '*Usage*\n80,400 / 100,000 tokens',
      '*Used*\n80.4% (threshold 80%)',
      '*Resets*\n2026-12-01 00:00 UTC+08:00',
      '*Top users*\nalice (80,400 tokens)',
      '*Top models*\ngpt-4o-mini (60,000 tokens), gpt-4o (20,400 tokens)',
      '*Fired at*\n2026-11-22 20:00 UTC+08:00',
    ]);
    const section = body.blocks[1];
    expect(section?.type === 'section' && section.fields?.every((f) => f.type === 'mrkdwn')).toBe(true);
    expect(body.blocks[2]).toEqual({ type: 'context', elements: [{ type: 'mrkdwn', text: 'lobe-quota · alert alt_01' }] });
  });

  it('says when a projected budget runs out, in dollars', () => {
    const fields = fieldTexts(buildSlackMessage(projectedAlert(), 'en'));
    expect(buildSlackMessage(projectedAlert(), 'en').text).toBe('📈 Research (project:research) is on track to use up the daily budget before it resets');
    expect(fields).toContain('*Usage*\n$31.25 / $50.00');
    expect(fields).toContain('*Used*\n62.5%');
    expect(fields).toContain('*Projected to run out*\n2026-11-22 20:30 UTC+01:00');
    expect(fields).toContain('*Top users*\nbob ($20.00), alice ($11.25)');
  });

  it('escapes &, < and > in user text, so a name cannot mention @channel or link', () => {
    const message = buildSlackMessage(thresholdAlert({ subjectName: '<!channel> & <http://evil|x>' }), 'en');
    const who = fieldTexts(message)[0];
    expect(who).toBe('*Who*\n&lt;!channel&gt; &amp; &lt;http://evil|x&gt; (user:alice)');
    expect(message.text).not.toContain('<');
    // The header is plain_text, which Slack shows verbatim: no entities there.
    expect(message.blocks[0]).toMatchObject({ text: { type: 'plain_text', text: '🟡 <!channel> & <http://evil|x> (user:alice) reached 80% of the monthly budget' } });
  });

  it('keeps a long name within Slack\'s 150-character header', () => {
    const message = buildSlackMessage(thresholdAlert({ subjectName: 'A'.repeat(300) }), 'en');
    const header = message.blocks[0];
    expect(header?.type === 'header' && header.text.text.length).toBeLessThanOrEqual(150);
  });

  it('writes Chinese', async () => {
    const { channel, receiver } = await slack('zh');
    await channel.send(thresholdAlert());
    const body = JSON.parse(receiver.requests[0]!.rawBody.toString('utf8')) as SlackMessage;
    expect(body.text).toBe('🟡 Alice（user:alice）已用到每月预算的 80%');
    expect(fieldTexts(body)).toEqual(
      expect.arrayContaining(['*对象*\nAlice（user:alice）', '*预算*\n每月（时区 Asia/Shanghai）', '*用量*\n80,400 / 100,000 tokens', '*已用比例*\n80.4%（阈值 80%）']),
    );
  });

  it('throws with Slack\'s error code on a 4xx', async () => {
    const { channel, receiver } = await slack();
    receiver.answer = { status: 404, body: 'no_service' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^slack: 127\.0\.0\.1:\d+ answered HTTP 404: no_service$/);
  });

  it('throws on a 500 and when nothing listens', async () => {
    const { channel, receiver } = await slack();
    receiver.answer = { status: 500, body: '' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/answered HTTP 500$/);
    const [down] = createChannels([{ type: 'slack', url: await unreachableUrl() }], { locale: 'en' });
    await expect(down!.send(thresholdAlert())).rejects.toThrow(/^slack: POST to .* failed: .*ECONNREFUSED/);
  });
});
