import type { AnswerTap } from '../response-sink.js';
import { CACHE_HEADER } from './eligibility.js';

/** An answer as it went out, captured whole. */
export interface CapturedAnswer {
  status: number;
  contentType: string;
  streamed: boolean;
  body: Buffer;
}

/**
 * A tap (response-sink.ts) that marks a looked-up request's answer `x-quota-cache: miss` and keeps
 * the bytes the client was sent, up to `maxBytes` (a larger answer is dropped as it grows, so a long
 * stream costs no memory beyond the bound). `done` gets the answer once it went out whole, after
 * the request was settled; it decides whether the answer is kept.
 */
export function captureAnswer(maxBytes: number, done: (answer: CapturedAnswer) => void): AnswerTap {
  let status = 0;
  let contentType = '';
  let pieces: string[] | null = [];
  let size = 0;
  return {
    headers: { [CACHE_HEADER]: 'miss' },
    whole(sentStatus, headers, body) {
      if (body.length <= maxBytes) done({ status: sentStatus, contentType: headers['content-type'] ?? 'application/json', streamed: false, body });
    },
    streamStarted(sentStatus, headers) {
      status = sentStatus;
      contentType = headers['content-type'] ?? '';
    },
    streamWrote(text) {
      if (pieces === null) return;
      size += Buffer.byteLength(text);
      if (size > maxBytes) pieces = null;
      else pieces.push(text);
    },
    streamEnded() {
      if (pieces !== null) done({ status, contentType, streamed: true, body: Buffer.from(pieces.join('')) });
      pieces = null;
    },
  };
}
