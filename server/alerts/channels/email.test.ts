import { afterEach, describe, expect, it } from 'vitest';
import { buildEmailMessage, smtpOptions } from './email.js';
import { projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { createChannels, type Channel } from './index.js';
import { parseMail, startMailReceiver, unreachableUrl, type MailReceiver } from './receiver.test-util.js';

let server: MailReceiver | null = null;
let channels: Channel[] = [];

afterEach(async () => {
  await Promise.all(channels.map((c) => c.close?.()));
  channels = [];
  await server?.close();
  server = null;
});

async function email(options: { locale?: 'en' | 'zh'; auth?: { user: string; pass: string; inUrl: string } } = {}): Promise<{ channel: Channel; server: MailReceiver }> {
  server = await startMailReceiver(options.auth);
  const login = options.auth ? `${options.auth.inUrl}@` : '';
  channels = createChannels(
    [{ type: 'email', smtp: `smtp://${login}127.0.0.1:${server.port}`, from: 'lobe-quota <alerts@example.com>', to: ['ops@example.com', 'cto@example.com'] }],
    { locale: options.locale ?? 'en' },
  );
  return { channel: channels[0] as Channel, server };
}

const part = (parts: { contentType: string; body: string }[], type: string): string =>
  parts.find((p) => p.contentType.toLowerCase().startsWith(type))?.body ?? '';

describe('email', () => {
  it('delivers a text and HTML mail over SMTP', async () => {
    const { channel, server } = await email();
    await channel.send(thresholdAlert());

    expect(server.mails).toHaveLength(1);
    const mail = server.mails[0]!;
    expect(mail.mailFrom).toBe('alerts@example.com');
    expect(mail.rcptTo).toEqual(['ops@example.com', 'cto@example.com']);
    const parsed = parseMail(mail.raw);
    expect(parsed.headers.get('from')).toBe('"lobe-quota" <alerts@example.com>');
    expect(parsed.headers.get('to')).toBe('ops@example.com, cto@example.com');
    expect(parsed.headers.get('subject')).toBe('[lobe-quota] user:alice at 80% of 100,000 tokens (month)');
    expect(parsed.headers.get('content-type')).toMatch(/^multipart\/alternative/);

    const text = part(parsed.parts, 'text/plain');
    expect(text).toContain('🟡 Alice (user:alice) reached 80% of the monthly budget');
    expect(text).toContain('Usage: 80,400 / 100,000 tokens');
    expect(text).toContain('Used: 80.4% (threshold 80%)');
    expect(text).toContain('Resets: 2026-12-01 00:00 UTC+08:00');
    expect(text).toContain('Top models: gpt-4o-mini (60,000 tokens), gpt-4o (20,400 tokens)');
    const html = part(parsed.parts, 'text/html');
    expect(html).toContain('<table');
    expect(html).toContain('80,400 / 100,000 tokens');
    expect(html).toContain('80.4% (threshold 80%)');
  });

  it('logs in with the URL\'s percent-decoded user and password', async () => {
    const { channel, server } = await email({ auth: { user: 'bot@example.com', pass: 'p@ss:w/rd', inUrl: 'bot%40example.com:p%40ss%3Aw%2Frd' } });
    await channel.send(thresholdAlert());
    expect(server.mails[0]?.user).toBe('bot@example.com');
  });

  it('writes Chinese, subject included', async () => {
    const { channel, server } = await email({ locale: 'zh' });
    await channel.send(projectedAlert());
    const parsed = parseMail(server.mails[0]!.raw);
    expect(parsed.headers.get('subject')).toBe('[lobe-quota] project:research 预计于 2026-11-22 20:30 UTC+01:00 用完 $50.00（day）');
    const text = part(parsed.parts, 'text/plain');
    expect(text).toContain('用量：$31.25 / $50.00');
    expect(text).toContain('预计用完时间：2026-11-22 20:30 UTC+01:00');
    expect(text).toContain('用量最多的用户：bob（$20.00）、alice（$11.25）');
  });

  it('escapes user text in the HTML body', () => {
    const { html, text, subject } = buildEmailMessage(thresholdAlert({ subjectName: '<script>alert("x")</script> & co', scope: 'user:al\r\nBcc: x@evil' }), 'en');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co (user:al Bcc: x@evil)');
    expect(html).not.toContain('<script>');
    expect(text).toContain('Who: <script>alert("x")</script> & co (user:al Bcc: x@evil)');
    expect(subject).toBe('[lobe-quota] user:al Bcc: x@evil at 80% of 100,000 tokens (month)');
  });

  it('throws with the server\'s answer when it refuses the message', async () => {
    const { channel, server } = await email();
    server.refuse = { code: 552, message: 'Mailbox full' };
    await expect(channel.send(thresholdAlert())).rejects.toThrow(/^email: .*552 Mailbox full/);
  });

  it('throws when no SMTP server listens', async () => {
    const port = new URL(await unreachableUrl()).port;
    channels = createChannels([{ type: 'email', smtp: `smtp://127.0.0.1:${port}`, from: 'alerts@example.com', to: ['ops@example.com'] }], { locale: 'en' });
    await expect(channels[0]!.send(thresholdAlert())).rejects.toThrow(/^email: .*ECONNREFUSED/);
  });
});

describe('smtpOptions', () => {
  it('reads TLS mode, host, port and credentials from the URL', () => {
    expect(smtpOptions('smtps://u%40x.com:p%3Aw@mail.example.com:465', 10_000)).toEqual({
      host: 'mail.example.com',
      port: 465,
      secure: true,
      auth: { user: 'u@x.com', pass: 'p:w' },
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 10_000,
    });
    const remote = smtpOptions('smtp://mail.example.com', 5_000);
    expect(remote).toMatchObject({ host: 'mail.example.com', secure: false });
    expect(remote.port).toBeUndefined();
    expect(remote.ignoreTLS).toBeUndefined();
  });

  it('skips STARTTLS on loopback unless told otherwise', () => {
    expect(smtpOptions('smtp://127.0.0.1:2525', 1).ignoreTLS).toBe(true);
    expect(smtpOptions('smtp://[::1]:2525', 1)).toMatchObject({ host: '::1', ignoreTLS: true });
    expect(smtpOptions('smtp://localhost', 1).ignoreTLS).toBe(true);
    expect(smtpOptions('smtp://127.0.0.1:2525?ignoreTLS=false', 1).ignoreTLS).toBe(false);
    expect(smtpOptions('smtp://127.0.0.1:2525?requireTLS=true', 1)).toMatchObject({ requireTLS: true });
    expect(smtpOptions('smtp://127.0.0.1:2525?requireTLS=true', 1).ignoreTLS).toBeUndefined();
    expect(smtpOptions('smtps://127.0.0.1', 1).ignoreTLS).toBeUndefined();
    expect(smtpOptions('smtp://mail.example.com?tls.rejectUnauthorized=false', 1).tls).toEqual({ rejectUnauthorized: false });
  });

  it('refuses URLs it cannot use', () => {
    expect(() => smtpOptions('http://mail.example.com', 1)).toThrow('must be an smtp:// or smtps:// URL, not http://');
    expect(() => smtpOptions('smtp://mail.example.com?pool=true', 1)).toThrow('unknown option "pool"');
    expect(() => smtpOptions('smtp://mail.example.com?ignoreTLS=yes', 1)).toThrow('must be true or false');
    expect(() => smtpOptions('not a url', 1)).toThrow('must be an smtp:// or smtps:// URL');
  });
});
