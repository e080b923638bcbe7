import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake upstreams (fake-openai.ts, fake-anthropic.ts, fake-ollama.ts) share of the HTTP they speak. */

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

/** One request to a fake upstream, while it is being answered. */
export interface FakeExchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the response closes (client gone, or the fake closing). */
  signal: AbortSignal;
  /** Set when the fake destroyed the socket on purpose (not counted as aborted). */
  dropped: boolean;
}

/** The HTTP side of a fake upstream, on 127.0.0.1 with an OS-chosen port. */
export interface FakeServer {
  /** e.g. "http://127.0.0.1:PORT". */
  baseUrl: string;
  /** Requests whose client went away before the response finished. */
  readonly aborted: number;
  /** Aborts the exchanges still running and closes every connection. */
  close(): Promise<void>;
}

/**
 * Serves `handle` for each request. A handler that throws is answered by `crashed` when nothing
 * was sent yet, else its connection is cut.
 */
export async function startFakeServer(handle: (ex: FakeExchange) => Promise<void>, crashed: (res: ServerResponse, error: unknown) => void): Promise<FakeServer> {
  const live = new Set<AbortController>();
  let closing = false;
  let aborted = 0;
  const server = createServer({ noDelay: true }, (req, res) => {
    const controller = new AbortController();
    live.add(controller);
    const ex: FakeExchange = { req, res, signal: controller.signal, dropped: false };
    res.on('close', () => {
      live.delete(controller);
      controller.abort();
      if (!res.writableFinished && !ex.dropped && !closing) aborted += 1;
    });
    void handle(ex).catch((error: unknown) => {
      if (res.destroyed) return;
      if (!res.headersSent) crashed(res, error);
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
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    get aborted() {
      return aborted;
    },
    close: async () => {
      closing = true;
      for (const controller of live) controller.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The requests a fake upstream recorded, in order, and a way to wait for them. */
export class RequestLog<R> {
  readonly requests: R[] = [];
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  record(request: R): void {
    this.requests.push(request);
    for (const waiter of [...this.waiters]) {
      if (this.requests.length >= waiter.n) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }

  /** Resolves once `n` requests were recorded; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 5000): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} requests (got ${this.requests.length})`));
      }, timeoutMs);
      timer.unref();
      const waiter = { n, resolve: () => (clearTimeout(timer), resolve()) };
      this.waiters.push(waiter);
    });
  }
}

/** A request as a fake upstream records it. */
export interface ReadRequest {
  method: string;
  /** The request target as sent, query string included. */
  url: string;
  /** The path without the query string. */
  path: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  rawBody: string;
  /** The parsed JSON body, or null when there is none or it is not JSON (`badJson`). */
  body: unknown;
  badJson: boolean;
}

/** Reads a request whole: its method, target, headers and JSON body. */
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
  return { method: req.method ?? 'GET', url, path: url.split('?')[0] ?? '/', headers, rawBody, body, badJson };
}

/** Bytes with this status and these headers (no defaults but the length), for a misbehaving upstream. */
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
