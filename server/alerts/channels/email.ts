import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { AlertEvent } from '../alert-event.js';
import { alertSubject, describeAlert, type AlertLevel, type Locale } from './alert-text.js';
import type { SendContext, Sender } from './channel.js';
import { escapeHtml, plainText } from './escape.js';

export interface EmailConfig {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465` (TLS from the start). */
  smtp: string;
  from: string;
  to: string[];
}

export interface EmailMessage {
  subject: string;
  text: string;
  html: string;
}

/**
 * Subject, text and HTML of the alert mail. The subject and text are plain (user text kept on its
 * line); the HTML escapes all user text.
 */
export function buildEmailMessage(alert: AlertEvent, locale: Locale): EmailMessage {
  const plain = describeAlert(alert, locale, plainText);
  const html = describeAlert(alert, locale, escapeHtml);
  const colon = locale === 'zh' ? '：' : ': ';
  const text = [plain.title, '', ...plain.facts.map((f) => `${f.label}${colon}${f.value}`), '', '-- ', plain.footer, ''].join('\n');
  const rows = html.facts
    .map((f) => `<tr><th align="left" valign="top" style="padding:4px 16px 4px 0;color:#555;font-weight:600">${f.label}</th><td style="padding:4px 0">${f.value}</td></tr>`)
    .join('\n');
  const page = [
    '<!doctype html>',
    `<html lang="${locale === 'zh' ? 'zh-CN' : 'en'}"><head><meta charset="utf-8"><title>${html.title}</title></head>`,
    '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222">',
    `<h2 style="margin:0 0 12px;font-size:18px;color:${HEADING_COLOUR[html.level]}">${html.title}</h2>`,
    `<table cellspacing="0" cellpadding="0" style="border-collapse:collapse">\n${rows}\n</table>`,
    `<p style="margin-top:16px;color:#888;font-size:12px">${html.footer}</p>`,
    '</body></html>',
    '',
  ].join('\n');
  return { subject: alertSubject(alert, locale), text, html: page };
}

const HEADING_COLOUR: Record<AlertLevel, string> = { notice: '#1f6feb', warning: '#9a6700', critical: '#bc4c00', exceeded: '#cf222e' };

/** Query options of the `smtp` URL, with nodemailer's names. Anything else is a config error. */
const BOOLEAN_OPTIONS = ['ignoreTLS', 'requireTLS', 'tls.rejectUnauthorized'] as const;

/**
 * nodemailer SMTP options from the channel's URL, parsed with WHATWG `URL` (user and password are
 * percent-decoded, so a password may hold `@` or `:` as `%40`, `%3A`).
 *
 * - `smtps://` connects with TLS (port 465 by default); `smtp://` (port 587) upgrades with STARTTLS
 *   when the server offers it, with the certificate checked.
 * - `?requireTLS=true` refuses to send unless STARTTLS works; `?ignoreTLS=true` never upgrades;
 *   `?tls.rejectUnauthorized=false` accepts a certificate that does not verify.
 * - An `smtp://` relay on the loopback interface (127.0.0.0/8, `::1`, `localhost`) defaults to
 *   `ignoreTLS`: the mail never leaves the machine, and local relays often offer STARTTLS with a
 *   self-signed certificate that would fail the check. `?ignoreTLS=false` turns that off.
 *
 * Throws an Error naming the problem for a URL that is not usable.
 */
export function smtpOptions(smtpUrl: string, timeoutMs: number): SMTPTransport.Options {
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    throw new Error('must be an smtp:// or smtps:// URL');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error(`must be an smtp:// or smtps:// URL, not ${url.protocol}//`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new Error('needs a host, e.g. smtp://user:pass@mail.example.com:587');
  const secure = url.protocol === 'smtps:';
  const options: SMTPTransport.Options = {
    host,
    secure,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  };
  if (url.port !== '') options.port = Number(url.port);
  if (url.username !== '') options.auth = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };

  const flags = new Map<string, boolean>();
  for (const [key, value] of url.searchParams) {
    if (!(BOOLEAN_OPTIONS as readonly string[]).includes(key)) {
      throw new Error(`unknown option "${key}" in the smtp URL (known: ${BOOLEAN_OPTIONS.join(', ')})`);
    }
    if (value !== 'true' && value !== 'false') throw new Error(`option "${key}" in the smtp URL must be true or false`);
    flags.set(key, value === 'true');
  }
  const requireTLS = flags.get('requireTLS');
  if (requireTLS !== undefined) options.requireTLS = requireTLS;
  const ignoreTLS = flags.get('ignoreTLS') ?? (!secure && requireTLS !== true && isLoopback(host) ? true : undefined);
  if (ignoreTLS !== undefined) options.ignoreTLS = ignoreTLS;
  const rejectUnauthorized = flags.get('tls.rejectUnauthorized');
  if (rejectUnauthorized !== undefined) options.tls = { rejectUnauthorized };
  return options;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Mail over SMTP. One connection per alert (alerts are rare; a pool would hold a socket open for
 * nothing). A server that refuses the message, or every recipient, fails the delivery; a server
 * that refuses only some recipients does not, since retrying would mail the others again.
 */
export function emailSender(config: EmailConfig, ctx: SendContext): Sender {
  const transport = nodemailer.createTransport(smtpOptions(config.smtp, ctx.timeoutMs));
  return {
    async send(alert) {
      const message = buildEmailMessage(alert, ctx.locale);
      try {
        await transport.sendMail({ from: config.from, to: config.to, ...message });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`email: ${reason}`, { cause: error });
      }
    },
    async close() {
      transport.close();
    },
  };
}
