import { terminalText } from './terminal-text.js';

/**
 * A plain-text table: columns padded to their widest cell, numbers right-aligned. Cells are shown
 * terminal-safe (controls escaped, long values cut; see terminalText).
 */
export function formatTable(header: string[], rows: unknown[][]): string {
  const cells = rows.map((row) => row.map((v) => (v === null || v === undefined ? '' : terminalText(String(v)))));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number' || row[i] === null || row[i] === undefined));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  if (cells.length === 0) return `${line(header)}\n(none)\n`;
  return `${[line(header), ...cells.map(line)].join('\n')}\n`;
}
