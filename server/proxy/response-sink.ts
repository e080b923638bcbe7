import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';

/**
 * Where a streamed answer goes. On @hono/node-server it writes straight to the socket's response
 * (no web-stream layer on the hot path, and backpressure from the client reaches the upstream);
 * elsewhere (`app.request` in tests) it feeds a web ReadableStream.
 */
export interface StreamSink {
  start(status: number, headers: Record<string, string>): void;
  /** Resolves when the text is handed over (after a drain, when the client reads slowly). */
  write(text: string): Promise<void>;
  end(): void;
  /** True once the client has gone away before the end. */
  readonly gone: boolean;
  onGone(listener: () => void): void;
  /** What the route handler returns, once `start` was called. */
  readonly response: Response;
}

export const outgoingOf = (c: Context): ServerResponse | undefined => (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;

/**
 * Sees a request's answer as it goes out, whole or streamed (the response cache keeps the answers
 * it may serve again, response-cache/answer-capture.ts), and adds its own headers to it.
 */
export interface AnswerTap {
  readonly headers: Record<string, string>;
  whole(status: number, headers: Record<string, string>, body: Buffer): void;
  streamStarted(status: number, headers: Record<string, string>): void;
  streamWrote(text: string): void;
  /** Once, when the stream ends (after the request was settled). */
  streamEnded(): void;
}

const taps = new WeakMap<Context, AnswerTap>();

/** Every answer this request sends from now on through sendWhole or a stream sink goes past `tap`. */
export function tapAnswer(c: Context, tap: AnswerTap): void {
  taps.set(c, tap);
}

/**
 * Sends a whole answer. On @hono/node-server it goes straight to the socket's response, without a
 * web Response and Headers to build and take apart again for every request; elsewhere (tests with
 * `app.request`) as a Response. `headers` is the caller's own new object, which it hands over: its
 * `content-length` is set here rather than in a copy.
 */
export function sendWhole(c: Context, status: number, headers: Record<string, string>, body: Buffer): Response {
  const tap = taps.get(c);
  const sent = tap ? { ...headers, ...tap.headers } : headers;
  const outgoing = outgoingOf(c);
  let response: Response = RESPONSE_ALREADY_SENT;
  if (outgoing) {
    // A tap keeps the headers as the answer's own (without the length of the body it was sent with).
    const head = tap ? { ...sent } : sent;
    head['content-length'] = String(body.length);
    outgoing.writeHead(status, head);
    outgoing.end(body);
  } else {
    response = c.body(Uint8Array.from(body), status as 200, sent);
  }
  tap?.whole(status, sent, body);
  return response;
}

export function streamSinkFor(c: Context): StreamSink {
  const outgoing = outgoingOf(c);
  const sink = outgoing ? nodeSink(outgoing) : webSink();
  const tap = taps.get(c);
  return tap ? tappedSink(sink, tap) : sink;
}

function tappedSink(sink: StreamSink, tap: AnswerTap): StreamSink {
  let ended = false;
  return {
    start(status, headers) {
      const sent = { ...headers, ...tap.headers };
      sink.start(status, sent);
      tap.streamStarted(status, sent);
    },
    write(text) {
      tap.streamWrote(text);
      return sink.write(text);
    },
    end() {
      sink.end();
      if (ended) return;
      ended = true;
      tap.streamEnded();
    },
    get gone() {
      return sink.gone;
    },
    onGone: (listener) => sink.onGone(listener),
    get response() {
      return sink.response;
    },
  };
}

function nodeSink(res: ServerResponse): StreamSink {
  const listeners: Array<() => void> = [];
  let gone = false;
  res.on('close', () => {
    if (res.writableFinished) return;
    gone = true;
    for (const listener of listeners) listener();
  });
  return {
    start(status, headers) {
      res.writeHead(status, headers);
      res.flushHeaders();
    },
    write(text) {
      if (gone || res.writableEnded) return Promise.resolve();
      if (res.write(text)) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    },
    end() {
      if (!res.writableEnded) res.end();
    },
    get gone() {
      return gone;
    },
    onGone(listener) {
      listeners.push(listener);
    },
    response: RESPONSE_ALREADY_SENT,
  };
}

function webSink(): StreamSink {
  const encoder = new TextEncoder();
  const listeners: Array<() => void> = [];
  let gone = false;
  let ended = false;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let response: Response | undefined;
  return {
    start(status, headers) {
      const body = new ReadableStream<Uint8Array>({
        start: (c) => {
          controller = c;
        },
        cancel: () => {
          gone = true;
          for (const listener of listeners) listener();
        },
      });
      response = new Response(body, { status, headers });
    },
    async write(text) {
      if (!gone && !ended) controller?.enqueue(encoder.encode(text));
    },
    end() {
      if (ended || gone) return;
      ended = true;
      controller?.close();
    },
    get gone() {
      return gone;
    },
    onGone(listener) {
      listeners.push(listener);
    },
    get response() {
      if (!response) throw new Error('StreamSink: start() must come before response');
      return response;
    },
  };
}
