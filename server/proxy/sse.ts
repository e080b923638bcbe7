/** One server-sent event: its exact text (to pass on unchanged) and its parsed fields. */
export interface SseEvent {
  /** The event's text including its terminating blank line. */
  raw: string;
  event: string | null;
  /** The data lines joined with "\n"; null when the event has none (a comment or keep-alive). */
  data: string | null;
}

const BOUNDARY = /\r?\n\r?\n|\r\r/g;

/**
 * Splits a text/event-stream into whole events as bytes arrive. Linear in the stream: each byte is
 * scanned once, and only the unfinished tail of the last chunk is kept between pushes.
 */
export class SseSplitter {
  private readonly decoder = new TextDecoder();
  private tail = '';

  push(chunk: Uint8Array): SseEvent[] {
    return this.split(this.tail + this.decoder.decode(chunk, { stream: true }));
  }

  /** Whatever is left when the stream ends (an event without its final blank line). */
  end(): SseEvent[] {
    const rest = this.tail + this.decoder.decode();
    this.tail = '';
    return rest.trim() === '' ? [] : [parseEvent(rest)];
  }

  private split(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    BOUNDARY.lastIndex = 0;
    for (let match = BOUNDARY.exec(text); match !== null; match = BOUNDARY.exec(text)) {
      const end = match.index + match[0].length;
      events.push(parseEvent(text.slice(start, end)));
      start = end;
    }
    this.tail = text.slice(start);
    return events;
  }
}

export function parseEvent(raw: string): SseEvent {
  let event: string | null = null;
  let data: string | null = null;
  for (const line of raw.split(/\r?\n|\r/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data = data === null ? value : `${data}\n${value}`;
    else if (field === 'event') event = value;
  }
  return { raw, event, data };
}

/** A `data:` event as OpenAI frames it. */
export const sseData = (json: unknown): string => `data: ${JSON.stringify(json)}\n\n`;

/** A named event as the Responses API frames it. */
export const sseNamed = (event: string, json: unknown): string => `event: ${event}\ndata: ${JSON.stringify(json)}\n\n`;

export const SSE_DONE = 'data: [DONE]\n\n';

/**
 * A named event's JSON object and its type (the `type` field, else the `event:` line), as Anthropic's
 * and the Responses API's streams send them; null for a comment, a keep-alive, or data that is not
 * JSON (passed on as it came by those formats).
 */
export function namedEventJson(event: SseEvent): { json: Record<string, unknown>; type: string } | null {
  if (event.data === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(event.data);
  } catch {
    return null;
  }
  const json = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  return { json, type: typeof json.type === 'string' ? json.type : (event.event ?? '') };
}
