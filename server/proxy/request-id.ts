import { randomUUID } from 'node:crypto';

/**
 * A request's id (`req_` + a UUIDv7, RFC 9562): 48 bits of Unix milliseconds, then random bits.
 * It becomes the ledger entry's unique `request_id`; ids that grow with time are appended at the
 * right edge of that index instead of landing on a random page, which is a page fewer for the
 * database to write per settled request. The random part comes from randomUUID, whose entropy is
 * buffered (a randomBytes call per request costs several times more).
 */
export function newRequestId(now: number = Date.now()): string {
  const random = randomUUID(); // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx: y is already variant 10
  return `${timePart(now)}${random.slice(15)}`;
}

/** `req_` and the time's 48 bits as a UUIDv7 starts, made once per millisecond (many requests share one). */
let lastTime = { at: NaN, text: '' };

function timePart(now: number): string {
  if (now !== lastTime.at) {
    const time = now.toString(16).padStart(12, '0');
    lastTime = { at: now, text: `req_${time.slice(0, 8)}-${time.slice(8, 12)}-7` };
  }
  return lastTime.text;
}
