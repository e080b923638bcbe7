import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { Metrics } from '../metrics/metrics.js';
import type { Hold, LedgerEntry } from '../store/types.js';
import { memoryStore, T0 } from '../testing/harness.js';
import type { StreamFormat } from './dialects/dialect.js';
import { chatStream } from './dialects/openai-chat-stream.js';
import { chatRequestSchema } from './dialects/openai-chat.js';
import { responsesStream } from './dialects/openai-responses-stream.js';
import { responsesRequestSchema } from './dialects/openai-responses.js';
import { eventsOf, fixtureText, type Fixture } from './dialects/stream-fixtures.test-util.js';
import { Meter } from './meter.js';
import { createPriceBook } from './pricing.js';
import { relayStream } from './relay-stream.js';
import type { StreamSink } from './response-sink.js';

/** Alice's budget; a request holds PROMPT tokens of it, so the budget leaves room for `room` output tokens. */
const LIMIT = 1_000;

async function admitted(room: number) {
  const store = memoryStore([{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: LIMIT, limitUsd: null, onLimit: 'reject' }]);
  const clock = new ManualClock(T0);
  const result = await Meter.admit(
    { store, clock, metrics: new Metrics({ store, clock, prices: createPriceBook() }), holdTtlMs: 30_000, leaseTokens: 2 },
    { holdId: 'req-1', subject: { userId: 'alice', projectId: null, keyId: 'key_a' }, model: 'gpt-4o-mini', promptTokens: LIMIT - room, price: null, wantOutput: 500, streaming: true, sessionId: null, tags: {} },
  );
  if (!result.ok) throw new Error('not admitted');
  return { store, clock, meter: result.meter };
}

/**
 * A sink that keeps what is written, and whether `meter` had been settled when the last bytes were;
 * the client leaves after `goneAfterWrites` writes.
 */
function recordingSink(meter: Meter, goneAfterWrites = Number.POSITIVE_INFINITY) {
  const listeners: Array<() => void> = [];
  let written = '';
  let writes = 0;
  let gone = false;
  let ended = false;
  let settledBeforeLastWrite = false;
  const sink: StreamSink = {
    start() {},
    async write(text) {
      if (gone || ended) return;
      written += text;
      settledBeforeLastWrite = meter.settledEntry !== null;
      if (++writes >= goneAfterWrites) {
        gone = true;
        for (const listener of listeners) listener();
      }
    },
    end() {
      ended = true;
    },
    get gone() {
      return gone;
    },
    onGone(listener) {
      listeners.push(listener);
    },
    get response(): Response {
      throw new Error('not a route');
    },
  };
  return { sink, written: () => written, ended: () => ended, settledBeforeLastWrite: () => settledBeforeLastWrite };
}

/** The upstream's bytes in chunks of `size` (events split anywhere), failing after `failAfter` bytes. */
async function* upstreamBody(text: string, size: number, failAfter = Number.POSITIVE_INFINITY): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += size) {
    if (at >= failAfter) throw new Error('other side closed');
    yield bytes.subarray(at, Math.min(at + size, bytes.length));
  }
}

interface RelayOptions {
  /** Output tokens the budget has room for. */
  room?: number;
  chunkBytes?: number;
  goneAfterWrites?: number;
  failAfter?: number;
}

/** Relays an upstream stream's text in one dialect through the one loop, one output token a piece. */
type Relay = (text: string, options?: RelayOptions) => Promise<Relayed>;

interface Relayed {
  written: string;
  ended: boolean;
  /** Whether the request was settled when the last bytes went to the client. */
  settledFirst: boolean;
  aborted: boolean;
  entries: LedgerEntry[];
  holds: Hold[];
}

function relayIn<Request, State>(format: StreamFormat<Request, State>, request: Request): Relay {
  return async (text, { room = 500, chunkBytes = 64, goneAfterWrites = Number.POSITIVE_INFINITY, failAfter = Number.POSITIVE_INFINITY } = {}) => {
    const { store, clock, meter } = await admitted(room);
    const client = recordingSink(meter, goneAfterWrites);
    const abort = new AbortController();
    await relayStream({
      format,
      state: format.begin(request, { model: 'gpt-4o-mini', assemble: false }),
      body: upstreamBody(text, chunkBytes, failAfter),
      sink: client.sink,
      abort,
      meter,
      countOutput: (pieces) => pieces.length,
      upstreamName: 'fake',
      clock,
    });
    return { written: client.written(), ended: client.ended(), settledFirst: client.settledBeforeLastWrite(), aborted: abort.signal.aborted, entries: await store.recentEntries(10), holds: await store.listHolds() };
  };
}

const chat = (includeUsage: boolean) =>
  relayIn(chatStream, chatRequestSchema.parse({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: includeUsage } }));
const responses = relayIn(responsesStream, responsesRequestSchema.parse({ model: 'gpt-4o-mini', input: 'hi', stream: true }));

/** The first `n` events of a fixture, as the upstream sent them. */
const firstEvents = (name: Fixture, n: number) =>
  eventsOf(fixtureText(name))
    .slice(0, n)
    .map((e) => e.raw)
    .join('');

/** A fixture's text without its usage chunk (its second-to-last event). */
const withoutUsageChunk = (name: Fixture) => fixtureText(name).replace(eventsOf(fixtureText(name)).at(-2)?.raw ?? '', '');

describe('relayStream: the one loop, for every dialect', () => {
  it.each<[string, Relay, Fixture, string, object]>([
    ['chat, usage asked', chat(true), 'chat-content', fixtureText('chat-content'), { inputTokens: 8, outputTokens: 3, source: 'upstream' }],
    ['chat, usage not asked', chat(false), 'chat-content', withoutUsageChunk('chat-content'), { inputTokens: 8, outputTokens: 3, source: 'upstream' }],
    ['chat, no usage reported', chat(false), 'chat-no-usage-asked', fixtureText('chat-no-usage-asked'), { inputTokens: LIMIT - 500, outputTokens: 2, source: 'estimated' }],
    ['responses', responses, 'responses-content', fixtureText('responses-content'), { inputTokens: 1, outputTokens: 3, source: 'upstream' }],
    ['responses, cut short by the upstream', responses, 'responses-incomplete', fixtureText('responses-incomplete'), { inputTokens: 1, outputTokens: 2, source: 'upstream' }],
  ])('%s: passed through, settled once on its end before the last bytes', async (_what, relay, name, written, charged) => {
    const result = await relay(fixtureText(name));
    expect(result).toMatchObject({ written, ended: true, settledFirst: true, aborted: false, holds: [] });
    expect(result.entries).toHaveLength(1);
    expect(result.entries[0]).toMatchObject({ ...charged, outcome: 'ok' });
  });

  it.each([1, 7, 4096])('the events are the same however the bytes arrive (chunks of %i)', async (chunkBytes) => {
    expect((await responses(fixtureText('responses-content'), { chunkBytes })).written).toBe(fixtureText('responses-content'));
    expect((await chat(true)(fixtureText('chat-content'), { chunkBytes })).written).toBe(fixtureText('chat-content'));
  });

  it.each<[string, Relay, Fixture, number, string]>([
    ['chat', chat(true), 'chat-content', 3, 'finish_reason":"length"'],
    // Numbered after the last event delivered (5), not after the delta it replaces.
    ['responses', responses, 'responses-content', 6, 'event: response.incomplete\ndata: {"type":"response.incomplete","sequence_number":6,'],
  ])('%s: output past the budget is not delivered; the stream is cut, settled once as cut_off, the upstream aborted', async (_what, relay, name, deliveredEvents, ending) => {
    // Room for two output tokens: the third piece is cut.
    const result = await relay(fixtureText(name), { room: 2 });
    const delivered = firstEvents(name, deliveredEvents);
    expect(result.written.startsWith(delivered)).toBe(true);
    expect(result.written.slice(delivered.length)).toContain(ending);
    expect(result).toMatchObject({ ended: true, settledFirst: true, aborted: true, holds: [] });
    expect(result.entries).toHaveLength(1);
    expect(result.entries[0]).toMatchObject({ inputTokens: LIMIT - 2, outputTokens: 2, source: 'estimated', outcome: 'cut_off' });
  });

  /** The events up to and including the second " hi" piece. */
  const twoPieces = (name: Fixture) => {
    const events = eventsOf(fixtureText(name));
    return events.slice(0, events.findIndex((e) => e.data?.includes('" hi"')) + 2);
  };

  it.each<[string, Relay, Fixture]>([
    ['chat', chat(true), 'chat-content'],
    ['responses', responses, 'responses-content'],
  ])('%s: a client that leaves is charged what it was sent, once; the upstream is aborted', async (_what, relay, name) => {
    const result = await relay(fixtureText(name), { goneAfterWrites: twoPieces(name).length, chunkBytes: 1 });
    expect(result).toMatchObject({ aborted: true, holds: [] });
    expect(result.entries).toHaveLength(1);
    expect(result.entries[0]).toMatchObject({ outputTokens: 2, source: 'estimated', outcome: 'client_abort' });
  });

  it.each<[string, Relay, Fixture, string]>([
    ['chat', chat(true), 'chat-content', 'data: {"error":{"message":"The upstream \\"fake\\" broke off the stream: other side closed","type":"server_error","param":null,"code":"upstream_failed"}}\n\n'],
    ['responses', responses, 'responses-content', 'event: error\n'],
  ])('%s: an upstream that breaks off: what reached the client is charged, and the client hears why', async (_what, relay, name, ending) => {
    const delivered = twoPieces(name)
      .map((e) => e.raw)
      .join('');
    const result = await relay(fixtureText(name), { chunkBytes: 1, failAfter: Buffer.byteLength(delivered) });
    expect(result.written.startsWith(delivered)).toBe(true);
    expect(result.written.slice(delivered.length).startsWith(ending)).toBe(true);
    expect(result).toMatchObject({ ended: true, settledFirst: true, holds: [] });
    expect(result.entries).toHaveLength(1);
    expect(result.entries[0]).toMatchObject({ outputTokens: 2, source: 'estimated', outcome: 'upstream_error' });
  });

  it('an upstream that breaks off before any output: nothing charged, the hold released', async () => {
    const result = await chat(true)(fixtureText('chat-content'), { chunkBytes: 1, failAfter: 10 });
    expect(result.written).toContain('broke off the stream');
    expect(result).toMatchObject({ entries: [], holds: [] });
  });

  it('responses: a stream closed without its terminal event is unfinished: charged what was delivered, with an error event', async () => {
    const delivered = firstEvents('responses-content', 7);
    const result = await responses(delivered);
    expect(result.written.startsWith(delivered)).toBe(true);
    expect(result.written.slice(delivered.length)).toContain('ended the stream before the response was complete');
    expect(result).toMatchObject({ ended: true, settledFirst: true, holds: [] });
    expect(result.entries[0]).toMatchObject({ outputTokens: 3, source: 'estimated', outcome: 'upstream_error' });
  });

  it('chat: a stream closed without [DONE] is complete: settled ok on the usage it reported, then [DONE] of ours', async () => {
    const withoutDone = firstEvents('chat-content', 6);
    const result = await chat(true)(withoutDone);
    expect(result).toMatchObject({ written: `${withoutDone}data: [DONE]\n\n`, settledFirst: true });
    expect(result.entries[0]).toMatchObject({ inputTokens: 8, outputTokens: 3, source: 'upstream', outcome: 'ok' });
  });
});
