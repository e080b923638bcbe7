import { describe, expect, it } from 'vitest';
import { formatTable } from './table.js';
import { MAX_CELL_CHARS, terminalText } from './terminal-text.js';

describe('terminalText', () => {
  it.each<[string, string, string]>([
    ['plain text stays', 'gpt-4o-mini', 'gpt-4o-mini'],
    ['non-ASCII stays', 'Zoë 张三 🚀', 'Zoë 张三 🚀'],
    ['the ESC of an ANSI colour', '\u001b[31mred\u001b[0m', '\\x1b[31mred\\x1b[0m'],
    ['an OSC title sequence ending in BEL', '\u001b]0;pwned\u0007', '\\x1b]0;pwned\\x07'],
    ['C1 CSI (one byte)', 'a\u009b2Jb', 'a\\x9b2Jb'],
    ['DEL and NUL', 'a\u007fb\u0000c', 'a\\x7fb\\x00c'],
    ['line breaks and tabs', 'a\nb\rc\td', 'a\\nb\\rc\\td'],
    ['a bidi override', 'abc\u202edcb', 'abc\\u202edcb'],
    ['a line separator', 'a\u2028b', 'a\\u2028b'],
  ])('%s', (_label, text, expected) => {
    expect(terminalText(text)).toBe(expected);
  });

  it('cuts a long value with "…" to the cell width', () => {
    const cut = terminalText('x'.repeat(100_000));
    expect(cut).toHaveLength(MAX_CELL_CHARS);
    expect(cut.endsWith('x…')).toBe(true);
    expect(terminalText('x'.repeat(MAX_CELL_CHARS))).toBe('x'.repeat(MAX_CELL_CHARS));
    expect(terminalText('abcdef', 4)).toBe('abc…');
  });

  it('never cuts between the halves of a surrogate pair', () => {
    const cut = terminalText(`${'x'.repeat(MAX_CELL_CHARS - 2)}🚀🚀🚀`);
    expect(cut).toBe(`${'x'.repeat(MAX_CELL_CHARS - 2)}…`);
  });

  it('counts escapes in the width, so a cut never leaves a raw control', () => {
    const cut = terminalText('\u001b'.repeat(1_000));
    expect(cut).not.toContain('\u001b');
    expect(cut.length).toBeLessThanOrEqual(MAX_CELL_CHARS);
  });
});

describe('formatTable', () => {
  it('shows every cell terminal-safe and keeps the columns aligned', () => {
    const table = formatTable(['model', 'requests'], [['\u001b[2Jevil', 1], ['y'.repeat(500), 22]]);
    expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    const lines = table.trimEnd().split('\n');
    expect(lines[1]).toMatch(/^\\x1b\[2Jevil +1$/);
    expect(lines.every((line) => line.length === lines[2]!.length)).toBe(true);
  });
});
