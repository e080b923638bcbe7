import { afterEach, describe, expect, it } from 'vitest';
import { NOW_MS, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel, type ChannelConfig } from './index.js';
import { unreachableUrl, type Receiver } from './receiver.test-util.js';
import { smsUnits } from './sms-text.js';
import { startTwilio, TWILIO_SID, TWILIO_TOKEN } from './sms-receivers.test-util.js';

let receiver: Receiver | null = null;

afterEach(async () => {
  await receiver?.close();
  receiver = null;
});

type TwilioConfig = Extract<ChannelConfig, { type: 'twilio' }>;

async function twilio(over: Partial<TwilioConfig> = {}, token = TWILIO_TOKEN): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startTwilio();
  const config: TwilioConfig = {
    type: 'twilio',
    accountSid: TWILIO_SID,
    authTokenEnv: 'TWILIO_AUTH_TOKEN',
    from: '+15005550006',
    to: ['+8613800138000'],
    baseUrl: receiver.url(''),
    ...over,
  };
  const [channel] = createChannels([config], { locale: 'en', now: () => NOW_MS, env: { TWILIO_AUTH_TOKEN: token } });
  return { channel: channel as Channel, receiver };
}

describe('twilio', () => {
  it('POSTs one form-encoded message per number, with basic auth Twilio accepts', async () => {
    const { channel, receiver } = await twilio({ to: ['+8613800138000', '+15005550010'] });
    await channel.send(thresholdAlert({ threshold: 100 }));

    expect(receiver.requests).toHaveLength(2);
    const [first, second] = receiver.requests;
    expect(first!.method).toBe('POST');
    expect(first!.path).toBe(`/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`);
    expect(first!.headers.authorization).toBe(`Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`);
    const form = new URLSearchParams(first!.rawBody.toString('utf8'));
    expect(Object.fromEntries(form)).toEqual({
      To: '+8613800138000',
      From: '+15005550006',
      Body: 'lobe-quota: Alice (user:alice) reached 100% of the monthly budget (80,400 / 100,000 tokens)',
    });
    expect(new URLSearchParams(second!.rawBody.toString('utf8')).get('To')).toBe('+15005550010');
  });

  it('sends through a Messaging Service instead of a number, in the channel\'s own language', async () => {
    const { channel, receiver } = await twilio({ from: undefined, messagingServiceSid: 'MG0123456789abcdef0123456789abcdef', locale: 'zh' });
    await channel.send(thresholdAlert());
    const form = new URLSearchParams(receiver.requests[0]!.rawBody.toString('utf8'));
    expect(form.get('MessagingServiceSid')).toBe('MG0123456789abcdef0123456789abcdef');
    expect(form.has('From')).toBe(false);
    expect(form.get('Body')).toBe('lobe-quota：Alice（user:alice）已用到每月预算的80%（80,400 / 100,000 tokens）');
    expect(smsUnits(form.get('Body')!).units).toBeLessThanOrEqual(70);
  });

  it('fails with Twilio\'s code and message when the token is wrong (401), and names no number in full', async () => {
    const { channel } = await twilio({}, 'not-the-token');
    const failure = await channel.send(thresholdAlert()).then(
      () => null,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toBe('to +*********8000: twilio: HTTP 401, error 20003: Authenticate');
    expect(failure?.cause).toBeUndefined();
  });

  it('masks the number Twilio quotes back, and says how many were sent before the failure', async () => {
    const { channel } = await twilio({ to: ['+8613800138000', '+15005550001'] });
    await expect(channel.send(thresholdAlert())).rejects.toThrow(
      /^to \+\*{7}0001 \(sent to 1 of 2 before\): twilio: HTTP 400, error 21211: The 'To' number \+\*{7}0001 is not a valid phone number\.$/,
    );
  });

  it('fails on an answer that is not Twilio\'s, and when nothing listens', async () => {
    const { channel, receiver } = await twilio();
    receiver.answer = { status: 502, body: '<html>bad gateway</html>' };
    // The judge lets a well-formed request through to the configured answer.
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^to \+\*{9}8000: twilio: 127\.0\.0\.1:\d+ answered HTTP 502: <html>bad gateway<\/html>$/);
    const [down] = createChannels(
      [{ type: 'twilio', accountSid: TWILIO_SID, authTokenEnv: 'T', from: '+15005550006', to: ['+8613800138000'], baseUrl: (await unreachableUrl()).replace(/\/hook$/, '') }],
      { locale: 'en', env: { T: TWILIO_TOKEN } },
    );
    await expect(down!.send(thresholdAlert())).rejects.toThrow(/^to \+\*{9}8000: twilio: POST to 127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/);
  });

  it('will not start without its token in the environment', () => {
    expect(() =>
      createChannels([{ type: 'twilio', accountSid: TWILIO_SID, authTokenEnv: 'MISSING_TOKEN', from: '+15005550006', to: ['+15005550006'], baseUrl: 'https://api.twilio.com' }], {
        locale: 'en',
        env: {},
      }),
    ).toThrow(/environment variable MISSING_TOKEN, which is not set/);
  });
});
