import { SseSplitter, type SseEvent } from './sse.js';

/**
 * Splits newline-delimited JSON (Ollama's `application/x-ndjson` streams) into lines as bytes
 * arrive, each in the relay's event shape: `raw` is the line with its line break (passed on
 * unchanged), `data` the line without it. Blank lines carry nothing and are dropped. Linear in the
 * stream, like SseSplitter: only the unfinished tail of the last chunk is kept between pushes.
 */
export class NdjsonSplitter {
  private readonly decoder = new TextDecoder();
  private tail = '';

  push(chunk: Uint8Array): SseEvent[] {
    const text = this.tail + this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      const line = text.slice(start, end + 1);
      start = end + 1;
      const data = line.endsWith('\r\n') ? line.slice(0, -2) : line.slice(0, -1);
      if (data.trim() !== '') events.push({ raw: line, event: null, data });
    }
    this.tail = text.slice(start);
    return events;
  }

  /** A last line the stream ended without a line break, given one (so whatever follows it starts a line). */
  end(): SseEvent[] {
    const rest = this.tail + this.decoder.decode();
    this.tail = '';
    const data = rest.endsWith('\r') ? rest.slice(0, -1) : rest;
    return data.trim() === '' ? [] : [{ raw: `${rest}\n`, event: null, data }];
  }
}

/** How a stream's bytes are cut into the events a dialect classifies. */
export type StreamFraming = 'sse' | 'ndjson';

export type StreamSplitter = Pick<SseSplitter, 'push' | 'end'>;

export const splitterFor = (framing: StreamFraming | undefined): StreamSplitter => (framing === 'ndjson' ? new NdjsonSplitter() : new SseSplitter());

/** The content type each framing's streams are answered with. */
export const STREAM_CONTENT_TYPES: Readonly<Record<StreamFraming, string>> = {
  sse: 'text/event-stream',
  ndjson: 'application/x-ndjson',
};
