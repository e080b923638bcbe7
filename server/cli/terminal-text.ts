/**
 * Names, ids and tags in the CLI's human output come from clients and admins. Printed raw, a
 * control character acts instead of showing: ESC starts an ANSI sequence (colours, cursor moves, a
 * rewritten title), CR overwrites the line, a bidi override reorders what follows. And a 100 KB
 * name makes a table unreadable. `--json` keeps every value whole; the tables show them safely.
 */

/**
 * C0 controls (ESC among them), DEL, C1 controls (0x9b is a one-byte CSI), the Unicode line and
 * paragraph separators, and the bidi embeddings, overrides and isolates.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `\u001b` → `\x1b`, `\u202e` → `\u202e`: the character's code, visible and inert. */
function visibleEscape(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** The widest a table cell gets, in characters; longer values end in "…". */
export const MAX_CELL_CHARS = 60;
/** The longest one-line message (e.g. the server's error text) before it is cut. */
export const MAX_LINE_CHARS = 400;

/** Cuts to `maxChars` with "…", never between the two halves of a surrogate pair. */
function truncate(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars - 1);
  return `${/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut}…`;
}

/** `text` with every control character shown as an escape, cut to `maxChars` with "…". */
export function terminalText(text: string, maxChars: number = MAX_CELL_CHARS): string {
  return truncate(text.replace(UNSAFE, visibleEscape), maxChars);
}
