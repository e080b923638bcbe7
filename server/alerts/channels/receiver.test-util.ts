/**
 * Local stand-ins for the vendors' webhook endpoints and for an SMTP server, bound to 127.0.0.1 on
 * an OS-chosen port. Each records what it received, raw, so tests can check the wire format and
 * verify signatures the way the vendor would.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedRequest {
  method: string;
  /** The request target as sent, query string included. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The exact bytes of the body. */
  rawBody: Buffer;
}

export interface Answer {
  status: number;
  /** A string is sent as is (text/plain); anything else as JSON. */
  body: unknown;
  /** Never answer: for timeouts. */
  hang?: boolean;
}

export interface Receiver {
  /** `http://127.0.0.1:PORT` + `path`. */
  url(path?: string): string;
  requests: ReceivedRequest[];
  /** The answer to every following request. */
  answer: Answer;
  close(): Promise<void>;
}

/** Requests beyond this are refused, so a runaway test cannot grow memory without bound. */
const MAX_REQUESTS = 20;
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * `judge`, when given, answers a request itself (a vendor's own checks: credentials, signatures)
 * by returning an Answer; returning undefined falls back to `answer`.
 */
export async function startReceiver(answer: Answer, judge?: (req: ReceivedRequest) => Answer | undefined): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const state = { answer };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (requests.length >= MAX_REQUESTS || size > MAX_BODY_BYTES) {
        res.writeHead(429).end();
        return;
      }
      const target = new URL(req.url ?? '/', 'http://127.0.0.1');
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        path: target.pathname,
        query: target.searchParams,
        headers: req.headers,
        rawBody: Buffer.concat(chunks),
      };
      requests.push(received);
      const { status, body, hang } = judge?.(received) ?? state.answer;
      if (hang) return;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    requests,
    get answer() {
      return state.answer;
    },
    set answer(next: Answer) {
      state.answer = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens: a port that was just free. */
export async function unreachableUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}

export interface ReceivedMail {
  mailFrom: string;
  rcptTo: string[];
  /** The user name the client logged in with, or null. */
  user: string | null;
  raw: string;
}

export interface MailReceiver {
  port: number;
  mails: ReceivedMail[];
  /** Set to make the server refuse the next messages with this SMTP error. */
  refuse: { code: number; message: string } | null;
  close(): Promise<void>;
}

/**
 * An SMTP server without TLS. Accepts AUTH PLAIN/LOGIN over plain text (loopback only) and checks
 * the credentials against `credentials` when given.
 */
export async function startMailReceiver(credentials?: { user: string; pass: string }): Promise<MailReceiver> {
  const mails: ReceivedMail[] = [];
  const receiver: MailReceiver = { port: 0, mails, refuse: null, close: async () => {} };
  const options: SMTPServerOptions = {
    authOptional: true,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (credentials && auth.username === credentials.user && auth.password === credentials.pass) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error('Invalid username or password'));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (receiver.refuse) {
          const error = Object.assign(new Error(receiver.refuse.message), { responseCode: receiver.refuse.code });
          callback(error);
          return;
        }
        const mailFrom = session.envelope.mailFrom;
        mails.push({
          mailFrom: mailFrom ? mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          user: typeof session.user === 'string' ? session.user : null,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.port = (server.server.address() as AddressInfo).port;
  receiver.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return receiver;
}

/** A parsed RFC 5322 message: decoded headers and the decoded text of each leaf MIME part. */
export interface ParsedMail {
  headers: Map<string, string>;
  parts: { contentType: string; body: string }[];
}

/**
 * Just enough MIME for the mails nodemailer writes: folded headers, RFC 2047 encoded words,
 * multipart/alternative, and 7bit, quoted-printable or base64 bodies.
 */
export function parseMail(raw: string): ParsedMail {
  const { headers, body } = splitHeaders(raw);
  const contentType = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) return { headers, parts: [{ contentType, body: decodeBody(body, headers.get('content-transfer-encoding')) }] };
  const parts = body
    .split(`--${boundary}`)
    .slice(1)
    .filter((p) => !p.startsWith('--'))
    .flatMap((p) => parseMail(p.replace(/^\r?\n/, '')).parts);
  return { headers, parts };
}

function splitHeaders(raw: string): { headers: Map<string, string>; body: string } {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end < 0 ? raw : raw.slice(0, end);
  const body = end < 0 ? '' : raw.slice(end).replace(/^\r?\n\r?\n/, '');
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), decodeWords(line.slice(colon + 1).trim()));
  }
  return { headers, body };
}

function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BQbq])\?([^?]*)\?=/g, (_m, _charset: string, encoding: string, text: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    );
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch ((encoding ?? '7bit').toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return decodeQuotedPrintable(body.replace(/=\r?\n/g, ''));
    default:
      return body;
  }
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    const hex = text.slice(i + 1, i + 3);
    if (ch === '=' && /^[0-9A-F]{2}$/i.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
