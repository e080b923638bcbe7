import type { Clock } from '../clock.js';
import type { StreamFormat } from './dialects/dialect.js';
import type { Meter, UpstreamUsage } from './meter.js';
import { splitterFor } from './ndjson.js';
import type { StreamSink } from './response-sink.js';
import type { SseEvent } from './sse.js';

export interface RelayInput<Request, State> {
  format: StreamFormat<Request, State>;
  /** The format's state for this stream (`format.begin`). */
  state: State;
  /** The upstream's stream, as its bytes arrive. */
  body: AsyncIterable<Uint8Array>;
  sink: StreamSink;
  /** Aborts the upstream request: when the client goes, or the stream is cut. */
  abort: AbortController;
  meter: Meter;
  /** Tokens in pieces of generated text, as the model counts them. */
  countOutput(text: readonly string[]): number;
  /** Named in what the client hears when the upstream fails. */
  upstreamName: string;
  clock: Clock;
}

/**
 * Passes an upstream stream through event by event, in any dialect, counting output as it goes:
 * the one place that ends a stream, and settles or releases its request exactly once.
 * - The upstream's terminal event (or its closing the stream, where that is how its API ends one)
 *   settles the request before the last bytes reach the client.
 * - Output that no budget has room for is not delivered: the stream is cut, settled on our count,
 *   and ended cleanly in the API's own way.
 * - A client that leaves is charged what it was sent; the upstream is aborted.
 * - Wherever a stream ends before the upstream's last word, the prompt is charged as the upstream
 *   reported it along the way, when it did, and the output as counted here.
 * - An upstream that breaks off, or ends an unfinished answer, is charged what reached the client
 *   (the provider bills it too), and the client hears why.
 */
export async function relayStream<Request, State>(input: RelayInput<Request, State>): Promise<void> {
  const { format, state, body, sink, abort, meter } = input;
  const splitter = splitterFor(format.framing);
  /** The latest usage the upstream reported along the way. */
  let usage: UpstreamUsage | null = null;
  sink.onGone(() => abort.abort());

  const cut = async () => {
    abort.abort();
    const settled = await meter.settleDelivered(usage, 'cut_off');
    await sink.write(format.cutEvents(state, { charged: settled?.entry ?? null, countedOutputTokens: meter.output, nowMs: input.clock.now() }));
    sink.end();
  };

  /**
   * Relays the events that one chunk of the upstream's bytes completed (one async call a chunk, not
   * an event: this is the hot path); true when the stream is over (settled and ended, or cut). It
   * stops early when the client is gone.
   */
  const relay = async (events: SseEvent[]): Promise<boolean> => {
    for (const event of events) {
      const step = format.classify(state, event);
      if (step.kind === 'terminal') {
        await meter.settle(step.usage, 'ok');
        await sink.write(event.raw);
        sink.end();
        return true;
      }
      if (step.usage) usage = step.usage;
      if (step.kind === 'rewrite') await sink.write(step.text);
      else if (step.kind === 'pass') {
        const tokens = step.output.length === 0 ? 0 : input.countOutput(step.output);
        if (tokens > 0 && !(await meter.addOutput(tokens))) {
          await cut();
          return true;
        }
        await sink.write(event.raw);
        format.delivered?.(state);
      }
      if (sink.gone) return false;
    }
    return false;
  };

  try {
    for await (const chunk of body) {
      if (await relay(splitter.push(chunk))) return;
      if (sink.gone) break;
    }
    // A last event without its closing blank line.
    if (!sink.gone && (await relay(splitter.end()))) return;
  } catch (error) {
    if (sink.gone) {
      await meter.settleDelivered(usage, 'client_abort');
      return;
    }
    await meter.abandon(usage);
    const failure = error instanceof Error ? error.message : String(error);
    await sink.write(format.brokeOffEvents(state, `The upstream "${input.upstreamName}" broke off the stream: ${failure}`));
    sink.end();
    return;
  }
  if (sink.gone) {
    await meter.settleDelivered(usage, 'client_abort');
    return;
  }
  const closed = format.closed(state, `The upstream "${input.upstreamName}" ended the stream before the response was complete.`);
  if (closed.complete) await meter.settle(usage, 'ok');
  else await meter.abandon(usage);
  if (closed.events !== '') await sink.write(closed.events);
  sink.end();
}
