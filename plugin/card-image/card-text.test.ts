import satori from 'satori';
import { describe, expect, it } from 'vitest';
import { cardFonts } from './card-fonts.js';
import { FONT_FAMILY } from './card-layout.js';
import { CARD_TEXT, cardFormat, countdown, plainText, resetText, scopeLabel, windowLabel } from './card-text.js';
import { monthly, NOW } from './card-png.test-util.js';

const en = CARD_TEXT.en;
const zh = CARD_TEXT.zh;
const alice = { kind: 'user' as const, id: 'alice', name: 'Alice' };

describe('plainText', () => {
  it.each([
    ['Alice', 'Alice'],
    ['  Alice \n Smith\t', 'Alice Smith'],
    ['<b>Bob</b> & "co"', '<b>Bob</b> & "co"'],
    ['a\u0000b\u0007c\u007fd\u0085e', 'a b c d e'],
    ['left\u2028right\u2029end', 'left right end'],
    // A right-to-left override would reorder the rest of the line; isolates and marks likewise.
    ['\u202eevil\u202c \u2067x\u2069 \u200fy', 'evil x y'],
    ['张伟', '张伟'],
  ])('%j → %j', (input, output) => {
    expect(plainText(input)).toBe(output);
  });

  it('cuts long text to 80 characters, ellipsis included, counting code points not UTF-16 units', () => {
    expect(plainText('x'.repeat(80))).toBe('x'.repeat(80));
    expect(plainText('x'.repeat(81))).toBe(`${'x'.repeat(79)}…`);
    const astral = '𠀀'.repeat(100);
    expect([...plainText(astral)]).toHaveLength(80);
    expect(plainText(astral).endsWith('𠀀…')).toBe(true);
  });
});

describe('countdown', () => {
  const minute = 60_000;
  const hour = 60 * minute;
  const day = 24 * hour;
  it.each([
    [8 * day + 4 * hour, '8 d 4 h', '8 天 4 小时'],
    [3 * day, '3 d', '3 天'],
    [3 * day + 59 * minute, '3 d', '3 天'],
    [5 * hour + 7 * minute, '5 h 7 m', '5 小时 7 分钟'],
    [2 * hour, '2 h', '2 小时'],
    [59 * minute + 1, '1 h', '1 小时'], // minutes round up: never "0 m" before the reset
    [12 * minute, '12 m', '12 分钟'],
    [1_000, '1 m', '1 分钟'],
  ])('%d ms: %j / %j', (ms, english, chinese) => {
    expect(countdown(ms, en)).toBe(english);
    expect(countdown(ms, zh)).toBe(chinese);
  });
});

describe('resetText', () => {
  it('counts down to a calendar reset and names it in the window’s own zone', () => {
    const reset = '2026-12-01T00:00:00+08:00';
    const window = { kind: 'month', timeZone: 'Asia/Shanghai' } as const;
    expect(resetText(reset, window, NOW, en)).toEqual({ countdown: 'Resets in 8 d 4 h', at: 'Tue, Dec 1, 00:00 GMT+8' });
    expect(resetText(reset, window, NOW, zh)).toEqual({ countdown: '8 天 4 小时后重置', at: '12月1日周二 GMT+8 00:00' });
    // The same instant in New York is the evening before.
    expect(resetText(reset, { kind: 'day', timeZone: 'America/New_York' }, NOW, en).at).toBe('Mon, Nov 30, 11:00 EST');
  });

  it('says when a reset is due, and what rolling and all-time windows do instead', () => {
    expect(resetText('2026-11-22T11:00:00Z', { kind: 'day', timeZone: 'UTC' }, NOW, en)).toEqual({ countdown: 'Resetting now', at: 'Sun, Nov 22, 11:00 UTC' });
    expect(resetText(null, { kind: 'rolling', hours: 5 }, NOW, en)).toEqual({ countdown: 'Usage leaves the window after 5 h', at: null });
    expect(resetText(null, { kind: 'rolling', hours: 5 }, NOW, zh).countdown).toBe('用量 5 小时后移出窗口');
    expect(resetText(null, { kind: 'total' }, NOW, en)).toEqual({ countdown: 'All-time budget, never resets', at: null });
    expect(resetText('not a date', { kind: 'month', timeZone: 'UTC' }, NOW, zh)).toEqual({ countdown: '总额度，不会重置', at: null });
  });

  it('falls back to UTC for a zone this Node does not know', () => {
    expect(resetText('2026-12-01T00:00:00Z', { kind: 'day', timeZone: 'Mars/Olympus_Mons' }, NOW, en).at).toBe('Tue, Dec 1, 00:00 UTC');
  });
});

describe('cardFormat', () => {
  it('formats figures as the web card does', () => {
    const f = cardFormat('en');
    expect(f.amount(78_500, 'tokens')).toBe('78,500 tokens');
    expect(f.figure(78_500, 'tokens')).toBe('78,500');
    expect(f.amount(9.6, 'usd')).toBe('$9.60');
    expect(f.amount(0.004213, 'usd')).toBe('$0.0042');
    expect(f.amount(0, 'usd')).toBe('$0.00');
    expect(f.percent(78.5)).toBe('78.5%');
    expect(f.percent(96)).toBe('96%');
    expect(cardFormat('zh').amount(1_234_567, 'tokens')).toBe('1,234,567 tokens');
  });
});

describe('labels', () => {
  it('names scopes from the subject’s point of view, with user-typed ids as plain text', () => {
    expect(scopeLabel('user:alice', alice, en)).toBe('Alice');
    expect(scopeLabel('user:bob', alice, en)).toBe('User bob');
    expect(scopeLabel('project:research', alice, zh)).toBe('项目 research');
    expect(scopeLabel('key:key_123', alice, en)).toBe('This key');
    expect(scopeLabel('global', alice, zh)).toBe('所有人');
    expect(scopeLabel('project:a\nb\u202ec', alice, en)).toBe('Project a b c');
  });

  it('names windows', () => {
    expect(windowLabel({ kind: 'month', timeZone: 'Asia/Shanghai' }, en)).toBe('monthly (Asia/Shanghai)');
    expect(windowLabel({ kind: 'week', timeZone: 'UTC' }, zh)).toBe('每周 (UTC)');
    expect(windowLabel({ kind: 'rolling', hours: 5 }, zh)).toBe('滚动 5 小时');
    expect(windowLabel({ kind: 'total' }, en)).toBe('all time');
  });
});

/** Every string a text table can produce, functions called with a sample argument. */
function allStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'function') return [(value as (arg: unknown) => string)(5)];
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(allStrings);
  return [];
}

describe('the shipped fonts', () => {
  it('have a glyph for every character the Chinese card can show of its own', async () => {
    // Dates of every month and weekday, as the card writes them.
    const dates = Array.from({ length: 12 * 7 }, (_, i) => resetText(new Date(Date.UTC(2026, i % 12, 1 + (i % 7))).toISOString(), monthly().window, 0, zh).at ?? '');
    const text = [...allStrings(zh), ...allStrings(en), ...dates].join(' ');
    const missing: string[] = [];
    // Satori asks for another font for each run of characters none of its fonts has.
    await satori({ type: 'div', props: { style: { display: 'flex', flexWrap: 'wrap', fontFamily: FONT_FAMILY }, children: text } }, {
      width: 2000,
      fonts: await cardFonts(),
      loadAdditionalAsset: async (_code, segment) => {
        missing.push(segment);
        return [];
      },
    });
    expect(missing).toEqual([]);
    expect(text).toContain('额度');
  });
});
