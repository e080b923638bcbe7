import { describe, expect, it } from 'vitest';
import { NdjsonSplitter, splitterFor } from './ndjson.js';
import { SseSplitter } from './sse.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('NdjsonSplitter', () => {
  it('yields each line with its exact text, however the bytes are cut', () => {
    const stream = '{"a":1}\n{"b":"é"}\n{"done":true}\n';
    const whole = new NdjsonSplitter().push(bytes(stream));
    expect(whole.map((e) => e.raw).join('')).toBe(stream);
    expect(whole.map((e) => [e.event, e.data])).toEqual([
      [null, '{"a":1}'],
      [null, '{"b":"é"}'],
      [null, '{"done":true}'],
    ]);
    // Every split point, including inside the two-byte "é" and right before and after a "\n".
    const all = bytes(stream);
    for (let cut = 1; cut < all.length; cut++) {
      const splitter = new NdjsonSplitter();
      const events = [...splitter.push(all.slice(0, cut)), ...splitter.push(all.slice(cut)), ...splitter.end()];
      expect(events, `cut at ${cut}`).toEqual(whole);
    }
  });

  it('keeps a line split over many chunks until its line break arrives', () => {
    const splitter = new NdjsonSplitter();
    expect(splitter.push(bytes('{"mess'))).toEqual([]);
    expect(splitter.push(bytes('age":'))).toEqual([]);
    expect(splitter.push(bytes('"hi"}\n{"x"'))).toEqual([{ raw: '{"message":"hi"}\n', event: null, data: '{"message":"hi"}' }]);
  });

  it('accepts CRLF: data without the \\r, raw as it came', () => {
    const events = new NdjsonSplitter().push(bytes('{"a":1}\r\n{"b":2}\r\n'));
    expect(events).toEqual([
      { raw: '{"a":1}\r\n', event: null, data: '{"a":1}' },
      { raw: '{"b":2}\r\n', event: null, data: '{"b":2}' },
    ]);
  });

  it('gives a last line without a line break to end(), with one added (so what follows starts a line)', () => {
    const splitter = new NdjsonSplitter();
    expect(splitter.push(bytes('{"a":1}\n{"done":true}')).map((e) => e.data)).toEqual(['{"a":1}']);
    expect(splitter.end()).toEqual([{ raw: '{"done":true}\n', event: null, data: '{"done":true}' }]);
    expect(splitter.end()).toEqual([]);
  });

  it('drops blank lines, which carry nothing', () => {
    const splitter = new NdjsonSplitter();
    expect(splitter.push(bytes('\n{"a":1}\n\r\n   \n{"b":2}\n')).map((e) => e.data)).toEqual(['{"a":1}', '{"b":2}']);
    expect(splitter.push(bytes('  '))).toEqual([]);
    expect(splitter.end()).toEqual([]);
  });
});

describe('splitterFor', () => {
  it('splits SSE unless a format says ndjson', () => {
    expect(splitterFor(undefined)).toBeInstanceOf(SseSplitter);
    expect(splitterFor('sse')).toBeInstanceOf(SseSplitter);
    expect(splitterFor('ndjson')).toBeInstanceOf(NdjsonSplitter);
  });
});
