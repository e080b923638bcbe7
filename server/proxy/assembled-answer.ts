import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { isRecord } from '../util/is-record.js';
import { splitterFor, type StreamFraming } from './ndjson.js';
import type { StreamSink } from './response-sink.js';
import type { SseEvent } from './sse.js';

/**
 * With `proxy.streamWholeAnswers`, a client that asked for a whole answer is served from a stream:
 * the upstream streams, the one relay loop meters it as it does any stream (a lease instead of the
 * whole allowance, cut at the budget even when the upstream ignores max_tokens), and its events are
 * assembled into the answer the client asked for by the dialect's Assembler. The relay writes its
 * events to a sink; this one keeps them instead of sending them, and the route sends the assembled
 * answer once settled.
 */
export interface Assembler {
  /** One event's data, parsed (an object), in the order the relay wrote them. */
  add(json: Record<string, unknown>): void;
  /** The upstream's (or our) error event, when the stream ended in one. */
  readonly error: Record<string, unknown> | null;
  /** The whole answer, in the shape the API gives for a request that did not stream. */
  answer(): Record<string, unknown>;
}

/** A sink that feeds every event written to it to an assembler, and sends nothing itself. */
export function assemblingSink(c: Context, assembler: Assembler, framing?: StreamFraming): StreamSink {
  const splitter = splitterFor(framing);
  const encoder = new TextEncoder();
  const listeners: Array<() => void> = [];
  let gone = false;
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  outgoing?.once('close', () => {
    if (outgoing.writableFinished) return;
    gone = true;
    for (const listener of listeners) listener();
  });
  const feed = (events: SseEvent[]) => {
    for (const event of events) {
      if (event.data === null || event.data === '[DONE]') continue;
      try {
        const json: unknown = JSON.parse(event.data);
        if (isRecord(json)) assembler.add(json);
      } catch {
        // Not JSON: nothing a whole answer could carry.
      }
    }
  };
  return {
    start() {},
    async write(text) {
      feed(splitter.push(encoder.encode(text)));
    },
    end() {
      feed(splitter.end());
    },
    get gone() {
      return gone;
    },
    onGone(listener) {
      listeners.push(listener);
    },
    get response(): Response {
      throw new Error('assemblingSink: the route sends the assembled answer itself');
    },
  };
}
