import { describe, expect, it } from 'vitest';
import { csvField, csvLine } from './csv.js';

describe('csvField', () => {
  it.each<[string, string | number | null, string]>([
    // plain values pass through
    ['plain text', 'alice', 'alice'],
    ['empty string', '', ''],
    ['inner spaces', 'gpt 4o mini', 'gpt 4o mini'],
    ['non-ASCII', 'Zürich – 上海', 'Zürich – 上海'],
    ['inner formula characters are harmless', 'a=b+c-d@e', 'a=b+c-d@e'],
    ['a single quote inside', "it's", "it's"],
    // null and numbers
    ['null → empty', null, ''],
    ['zero', 0, '0'],
    ['integer', 1234567, '1234567'],
    ['decimal', 12.5, '12.5'],
    ['negative number is not defused', -3, '-3'],
    ['tiny number', 0.000001, '0.000001'],
    // RFC 4180 quoting
    ['comma', 'a,b', '"a,b"'],
    ['double quote', 'say "hi"', '"say ""hi"""'],
    ['only a quote', '"', '""""'],
    ['newline', 'line1\nline2', '"line1\nline2"'],
    ['CRLF', 'line1\r\nline2', '"line1\r\nline2"'],
    ['comma and quote', 'x,"y"', '"x,""y"""'],
    // formula injection: leading =, +, -, @, tab, CR get a leading '
    ['=', '=SUM(A1:A9)', "'=SUM(A1:A9)"],
    ['+', '+1', "'+1"],
    ['-', '-1', "'-1"],
    ['@', '@cmd', "'@cmd"],
    ['tab', '\tx', "'\tx"],
    ['= with comma is defused and quoted', '=HYPERLINK("http://x","y")', '"\'=HYPERLINK(""http://x"",""y"")"'],
    ['leading CR is defused and quoted', '\r=1', '"\'\r=1"'],
    ['leading space is not a formula', ' =1', ' =1'],
    ['only an equals sign', '=', "'="],
  ])('%s', (_label, value, expected) => {
    expect(csvField(value)).toBe(expected);
  });
});

describe('csvLine', () => {
  it.each<[string, Array<string | number | null>, string]>([
    ['simple row', ['alice', 42, 1.5], 'alice,42,1.5\r\n'],
    ['empty row', [], '\r\n'],
    ['nulls keep their column', [null, 'x', null], ',x,\r\n'],
    ['quoted and defused fields', ['a,b', '=1+1', 'q"q', -7], '"a,b",\'=1+1,"q""q",-7\r\n'],
    ['embedded newline stays in one quoted field', ['note', 'two\nlines'], 'note,"two\nlines"\r\n'],
  ])('%s', (_label, fields, expected) => {
    expect(csvLine(fields)).toBe(expected);
  });
});
