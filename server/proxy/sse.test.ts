import { describe, expect, it } from 'vitest';
import { parseEvent, SseSplitter } from './sse.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('SseSplitter', () => {
  it('yields whole events with their exact text, however the bytes are cut', () => {
    const stream = 'data: {"a":1}\n\ndata: {"b":"é"}\n\n: keep-alive\n\nevent: response.completed\ndata: {"c":3}\n\ndata: [DONE]\n\n';
    const whole = new SseSplitter().push(bytes(stream));
    expect(whole.map((e) => e.raw).join('')).toBe(stream);
    expect(whole.map((e) => [e.event, e.data])).toEqual([
      [null, '{"a":1}'],
      [null, '{"b":"é"}'],
      [null, null],
      ['response.completed', '{"c":3}'],
      [null, '[DONE]'],
    ]);
    // Every split point, including inside the two-byte "é" and inside "\n\n".
    const all = bytes(stream);
    for (let cut = 1; cut < all.length; cut++) {
      const splitter = new SseSplitter();
      const events = [...splitter.push(all.slice(0, cut)), ...splitter.push(all.slice(cut)), ...splitter.end()];
      expect(events, `cut at ${cut}`).toEqual(whole);
    }
  });

  it('accepts CRLF framing and keeps an unterminated last event for end()', () => {
    const splitter = new SseSplitter();
    expect(splitter.push(bytes('data: 1\r\n\r\ndata: 2')).map((e) => e.data)).toEqual(['1']);
    expect(splitter.end().map((e) => e.data)).toEqual(['2']);
  });

  it('joins multi-line data and ignores comments and unknown fields', () => {
    expect(parseEvent('id: 7\ndata: a\ndata:b\n: note\nretry: 5\n\n')).toEqual({ raw: 'id: 7\ndata: a\ndata:b\n: note\nretry: 5\n\n', event: null, data: 'a\nb' });
  });
});
