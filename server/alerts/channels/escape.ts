/**
 * Escapers for the text people typed (subject names, scope ids, model names, time zones) before it
 * goes into a vendor's message format. Our own labels and numbers are written safe and are never
 * passed through these. Every escaper first folds control characters and line separators into a
 * space: one name must not be able to start a new line, heading, list item or mail header.
 */

const LINE_BREAKING = /[\u0000-\u001f\u007f\u2028\u2029]+/g;

/** One line of plain text (plain-text card fields, mail subjects, text bodies, notification titles). */
export const plainText = (text: string): string => text.replace(LINE_BREAKING, ' ');

/**
 * Slack mrkdwn: Slack asks for exactly `&`, `<` and `>` to be escaped as entities; `<` would
 * otherwise open a link or a mention such as `<!channel>`.
 */
export const escapeSlack = (text: string): string =>
  plainText(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * DingTalk and WeCom Markdown. Punctuation that formats, links or quotes gets a CommonMark
 * backslash escape (shown as the character itself); `<`, `>` and `&` become entities, because
 * both vendors also accept raw HTML such as `<font color=…>`. An underscore between letters or
 * digits never emphasises, so ids such as `alert_…` or `key_…` are left as they are.
 */
export const escapeMarkdown = (text: string): string =>
  plainText(text)
    .replace(/[\\`*~[\]()#!|]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, (ch) => `\\${ch}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');

/** HTML text and attribute values. */
export const escapeHtml = (text: string): string =>
  plainText(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

/** Shortens user text that would otherwise bloat a message past a vendor's size limit. */
export const clip = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
