import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannels, type Channel } from './index.js';
import { projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { startReceiver, unreachableUrl, type Receiver } from './receiver.test-util.js';

const SECRET = 'whsec_test_0123456789';

let receiver: Receiver | null = null;
let channels: Channel[] = [];

afterEach(async () => {
  await Promise.all(channels.map((c) => c.close?.()));
  channels = [];
  await receiver?.close();
  receiver = null;
});

async function webhook(options: { secret?: string; path?: string; timeoutMs?: number } = {}): Promise<{ channel: Channel; receiver: Receiver }> {
  receiver = await startReceiver({ status: 204, body: '' });
  const config = { type: 'webhook' as const, url: receiver.url(options.path), ...(options.secret ? { secret: options.secret } : {}) };
  channels = createChannels([config], { locale: 'en', ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  return { channel: channels[0] as Channel, receiver };
}

/** What a receiver does (DESIGN): HMAC the bytes as received, before parsing, constant-time compare. */
function verifySignature(rawBody: Buffer, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(rawBody).digest('hex'));
  const received = Buffer.from(header.slice('sha256='.length));
  return received.length === expected.length && timingSafeEqual(received, expected);
}

describe('generic webhook', () => {
  it('POSTs the DESIGN payload as JSON with a signature over the raw body', async () => {
    const { channel, receiver } = await webhook({ secret: SECRET });
    const alert = thresholdAlert();
    await channel.send(alert);

    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/hook');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe('lobe-quota');
    expect(verifySignature(req.rawBody, req.headers['x-lobe-quota-signature'], SECRET)).toBe(true);
    expect(verifySignature(req.rawBody, req.headers['x-lobe-quota-signature'], 'another secret')).toBe(false);

    const body = JSON.parse(req.rawBody.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      ['id', 'kind', 'scope', 'window', 'threshold', 'percentage', 'usage', 'limit', 'unit', 'resetsAt', 'firedAt', 'projectedAt', 'topConsumers'].sort(),
    );
    expect(body).toEqual({
      id: 'alt_01',
      kind: 'threshold',
      scope: 'user:alice',
      window: { kind: 'month', timeZone: 'Asia/Shanghai' },
      threshold: 80,
      percentage: 80.4,
      usage: 80_400,
      limit: 100_000,
      unit: 'tokens',
      resetsAt: '2026-12-01T00:00:00+08:00',
      firedAt: '2026-11-22T12:00:00.000Z',
      projectedAt: null,
      topConsumers: alert.topConsumers,
    });
  });

  it('signs non-ASCII bodies over their UTF-8 bytes', async () => {
    const { channel, receiver } = await webhook({ secret: SECRET });
    await channel.send(thresholdAlert({ scope: 'user:张三', topConsumers: [{ kind: 'model', id: '通义千问', usage: 1 }] }));
    const req = receiver.requests[0]!;
    expect(req.rawBody.toString('utf8')).toContain('通义千问');
    expect(verifySignature(req.rawBody, req.headers['x-lobe-quota-signature'], SECRET)).toBe(true);
  });

  it('sends projected alerts with their projection and no threshold', async () => {
    const { channel, receiver } = await webhook({ secret: SECRET });
    await channel.send(projectedAlert());
    const body = JSON.parse(receiver.requests[0]!.rawBody.toString('utf8')) as Record<string, unknown>;
    expect(body).toMatchObject({ kind: 'projected', threshold: null, projectedAt: '2026-11-22T19:30:00.000Z', unit: 'usd', usage: 31.25, limit: 50 });
  });

  it('sends no signature header without a secret', async () => {
    const { channel, receiver } = await webhook();
    await channel.send(thresholdAlert());
    expect(receiver.requests[0]!.headers['x-lobe-quota-signature']).toBeUndefined();
  });

  it('throws on a 500 with the status and the answer, but not the URL\'s secret path', async () => {
    const { channel, receiver } = await webhook({ path: '/hooks/T0KEN-in-path' });
    receiver.answer = { status: 500, body: 'database on fire' };
    const error = await channel.send(thresholdAlert()).then(() => null, (e: unknown) => e as Error);
    expect(error?.message).toMatch(/^webhook: 127\.0\.0\.1:\d+ answered HTTP 500: database on fire$/);
    expect(error?.message).not.toContain('T0KEN');
  });

  it('does not follow redirects', async () => {
    const { channel, receiver } = await webhook();
    receiver.answer = { status: 302, body: '' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/answered HTTP 302/);
    expect(receiver.requests).toHaveLength(1);
  });

  it('throws when nothing listens', async () => {
    channels = createChannels([{ type: 'webhook', url: await unreachableUrl() }], { locale: 'en' });
    await expect(channels[0]!.send(thresholdAlert())).rejects.toThrow(/^webhook: POST to 127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/);
  });

  it('throws when the receiver does not answer in time', async () => {
    const { channel, receiver } = await webhook({ timeoutMs: 150 });
    receiver.answer = { status: 200, body: '', hang: true };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^webhook: 127\.0\.0\.1:\d+ did not answer within 0\.15 s$/);
  });
});
