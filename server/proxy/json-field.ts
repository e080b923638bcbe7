const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const isJsonSpace = (byte: number | undefined): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/** The index of the quote that closes the string opened at `open`, or -1. */
function stringEnd(json: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = json.indexOf(QUOTE, at + 1);
    if (at < 0) return -1;
    let backslashes = 0;
    while (json[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** The bytes of the few field names asked for (the APIs' usage fields), made once each. */
const KEY_BYTES = new Map<string, Buffer>();

function keyBytes(key: string): Buffer {
  let bytes = KEY_BYTES.get(key);
  if (!bytes) KEY_BYTES.set(key, (bytes = Buffer.from(key)));
  return bytes;
}

/**
 * The JSON text of one top-level field of a JSON object, found without parsing the rest: an
 * upstream's whole answer is mostly generated text, and all the proxy needs of it is `usage`.
 * Strings are skipped with `indexOf`, so the scan costs little more than finding their quotes.
 * A duplicated key gives its last value, as JSON.parse would. Null when the field is absent or
 * the text is not shaped like a JSON object (the caller then parses the whole of it).
 */
export function topLevelField(json: Buffer, key: string): string | null {
  const name = keyBytes(key);
  let start = 0;
  while (isJsonSpace(json[start])) start++;
  if (json[start] !== OPEN_OBJECT) return null;
  let depth = 0;
  let valueStart = -1;
  let found: { start: number; end: number } | null = null;
  for (let at = start; at < json.length; at++) {
    const byte = json[at];
    if (byte === QUOTE) {
      const end = stringEnd(json, at);
      if (end < 0) return null;
      if (depth === 1 && valueStart < 0 && end - at - 1 === name.length && json.compare(name, 0, name.length, at + 1, end) === 0) {
        let next = end + 1;
        while (isJsonSpace(json[next])) next++;
        if (json[next] === COLON) {
          valueStart = next + 1;
          at = next;
          continue;
        }
      }
      at = end;
    } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      depth++;
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) {
        if (valueStart >= 0) found = { start: valueStart, end: at };
        let rest = at + 1;
        while (isJsonSpace(json[rest])) rest++;
        if (rest !== json.length) return null;
        return found ? json.toString('utf8', found.start, found.end).trim() : null;
      }
      if (depth < 0) return null;
    } else if (byte === COMMA && depth === 1 && valueStart >= 0) {
      found = { start: valueStart, end: at };
      valueStart = -1;
    }
  }
  return null; // never closed
}
