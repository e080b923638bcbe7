import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake upstreams (fake-openai.ts, fake-anthropic.ts, fake-gemini.ts) share of the HTTP they speak. */

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A request as a fake reads it: its target, its body (parsed when it is JSON) and its headers. */
export interface ReadRequest {
  method: string;
  /** The request target as sent, query string included. */
  url: string;
  /** The path without the query string. */
  path: string;
  rawBody: string;
  /** The parsed JSON body, or null when there is none or it is not JSON (`badJson`). */
  body: unknown;
  badJson: boolean;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

export async function readRequest(req: IncomingMessage): Promise<ReadRequest> {
  const rawBody = await readBody(req);
  const url = req.url ?? '/';
  let body: unknown = null;
  let badJson = false;
  if (rawBody.length > 0) {
    try {
      body = JSON.parse(rawBody);
    } catch {
      badJson = true;
    }
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { method: req.method ?? 'GET', url, path: url.split('?')[0] ?? '/', rawBody, body, badJson, headers };
}

/** Waits `ms`; false (at once) when the exchange is aborted first, so a slow stream stops with its client. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Writes a piece of a stream; false when the client is gone. */
export function write(res: ServerResponse, data: string): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => res.write(data, (error) => resolve(!error && !res.destroyed)));
}

/** Cuts the connection on purpose (a dropped upstream), which the fake does not count as an abort. */
export function drop(ex: { res: ServerResponse; dropped: boolean }): void {
  ex.dropped = true;
  ex.res.destroy();
}

/** Bytes with this status and these headers (no defaults but the length), for an upstream that misbehaves (a redirect, a truncated or non-JSON body). */
export interface RawBehaviour {
  kind: 'raw';
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** Accept the request and never answer, until the client goes away or the fake is closed. */
export interface HangBehaviour {
  kind: 'hang';
}

/**
 * Streams: send `afterPieces` output pieces, then destroy the socket before the stream's end.
 * Whole answers: destroy the socket before any response byte.
 */
export interface DropBehaviour {
  kind: 'drop';
  afterPieces: number;
  chunkDelayMs?: number;
}

/** One client's exchange with a fake upstream. */
export interface Exchange<Recorded> {
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the response closes (client gone, or the fake closing). */
  signal: AbortSignal;
  /** Set when the fake destroyed the socket on purpose (not counted as aborted). */
  dropped: boolean;
  /** The request as recorded, once its body was read. */
  recorded: Recorded | null;
}

/**
 * The bookkeeping every fake upstream does, whatever API it speaks: behaviours queued (FIFO, then
 * `defaultBehaviour`), requests recorded and waited for, clients that left counted, and a close
 * that ends what is still running.
 */
export interface FakeServer<Recorded, Behaviour> {
  /** "http://127.0.0.1:PORT". */
  origin: string;
  requests: Recorded[];
  defaultBehaviour: Behaviour;
  /** Number of requests whose client went away before the response finished. */
  aborted: number;
  enqueue(...behaviours: Behaviour[]): void;
  /** The next queued behaviour, else the default. */
  nextBehaviour(): Behaviour;
  record(request: Recorded): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A plain `node:http` server on 127.0.0.1 with an OS-chosen port that hands each request to
 * `handle`; a request whose handling throws gets `crashed`'s answer (or its socket destroyed when
 * the answer had begun).
 */
export async function startFakeServer<Recorded, Behaviour>(options: {
  defaultBehaviour: Behaviour;
  handle(exchange: Exchange<Recorded>): Promise<void>;
  crashed(res: ServerResponse, error: unknown): void;
}): Promise<FakeServer<Recorded, Behaviour>> {
  const queue: Behaviour[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const live = new Set<AbortController>();
  let closing = false;

  const fake: FakeServer<Recorded, Behaviour> = {
    origin: '',
    requests: [],
    defaultBehaviour: options.defaultBehaviour,
    aborted: 0,
    enqueue: (...behaviours) => {
      queue.push(...behaviours);
    },
    nextBehaviour: () => queue.shift() ?? fake.defaultBehaviour,
    record: (request) => {
      fake.requests.push(request);
      for (const waiter of [...waiters]) {
        if (fake.requests.length >= waiter.n) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    },
    waitForRequests: (n, timeoutMs = 5000) => {
      if (fake.requests.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} requests (got ${fake.requests.length})`));
        }, timeoutMs);
        timer.unref();
        const waiter = { n, resolve: () => (clearTimeout(timer), resolve()) };
        waiters.push(waiter);
      });
    },
    close: async () => {
      closing = true;
      for (const controller of live) controller.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };

  const server: Server = createServer({ noDelay: true }, (req, res) => {
    const controller = new AbortController();
    live.add(controller);
    const exchange: Exchange<Recorded> = { req, res, signal: controller.signal, dropped: false, recorded: null };
    res.on('close', () => {
      live.delete(controller);
      controller.abort();
      if (!res.writableFinished && !exchange.dropped && !closing) fake.aborted += 1;
    });
    void options.handle(exchange).catch((error: unknown) => {
      if (res.destroyed) return;
      if (!res.headersSent) options.crashed(res, error);
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  fake.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
