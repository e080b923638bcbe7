import { describe, expect, it } from 'vitest';
import type { QuotaStatus } from '../../server/quota/status-report.js';
import { CARD_WIDTH, cardLayout, fillWidth, HEADER, MAIN_BAR, MAX_OTHER_ROWS, type CardElement, type CardLayout } from './card-layout.js';
import { monthly, NOW, statusOf } from './card-png.test-util.js';

/** The text of an element, in drawing order. */
function textsOf(node: CardElement | string): string[] {
  if (typeof node === 'string') return [node];
  const { children } = node.props;
  if (children === undefined) return [];
  return (Array.isArray(children) ? children : [children]).flatMap(textsOf);
}

/** The card's text, part after part. */
const cardTexts = (layout: CardLayout): string[] => layout.parts.flatMap((p) => textsOf(p.element));

const others = (count: number) =>
  Array.from({ length: count }, (_, i) => monthly({ id: `project:p${i}|day`, scope: `project:p${i}`, window: { kind: 'day', timeZone: 'UTC' }, percentage: i * 10 }));

describe('fillWidth', () => {
  const track = { width: 200, height: 10 };
  it.each([
    [0, 0],
    [-5, 0],
    [Number.NaN, 0],
    [0.1, 10], // a round dot: any use shows
    [50, 100],
    [78.5, 157],
    [100, 200],
    [250, 200], // exceeded: a full bar, never past its end
  ])('%d %% → %d px', (percentage, width) => {
    expect(fillWidth(percentage, track)).toBe(width);
  });
});

describe('cardLayout', () => {
  it('has a fixed width and a height that grows by one row per other budget, up to the cap', () => {
    const height = (count: number) => cardLayout(statusOf(monthly(), others(count)), { locale: 'en', now: NOW }).height;
    const alone = height(0);
    const rowHeight = height(2) - height(1);
    expect(rowHeight).toBeGreaterThan(20);
    expect(height(MAX_OTHER_ROWS)).toBe(height(1) + (MAX_OTHER_ROWS - 1) * rowHeight);
    // Past the cap, one "+N more" line, whatever N is.
    expect(height(MAX_OTHER_ROWS + 1)).toBeGreaterThan(height(MAX_OTHER_ROWS));
    expect(height(MAX_OTHER_ROWS + 20)).toBe(height(MAX_OTHER_ROWS + 1));
    expect(height(1)).toBeGreaterThan(alone);
    expect(cardLayout(statusOf(monthly()), { locale: 'en', now: NOW }).width).toBe(CARD_WIDTH);
  });

  it('keeps the main bar inside the card, below the title and figures', () => {
    const { height } = cardLayout(statusOf(monthly()), { locale: 'en', now: NOW });
    expect(MAIN_BAR.x).toBeGreaterThan(0);
    expect(MAIN_BAR.x + MAIN_BAR.width).toBeLessThan(CARD_WIDTH);
    expect(MAIN_BAR.y).toBeGreaterThan(80);
    expect(MAIN_BAR.y + MAIN_BAR.height).toBeLessThan(height);
  });

  it('is made of parts drawn apart: each exactly its box, stacked inside the frame without overlapping', () => {
    const cases: Array<[QuotaStatus, number]> = [
      [statusOf(monthly()), 1],
      [statusOf(monthly(), others(MAX_OTHER_ROWS + 3)), 2],
      [statusOf(null), 1],
      [statusOf(null, others(2)), 2],
    ];
    for (const [status, partCount] of cases) {
      const { width, height, frame, parts } = cardLayout(status, { locale: 'en', now: NOW });
      expect(parts).toHaveLength(partCount);
      expect(parts[0]!.box.y).toBe(HEADER.y);
      for (const [i, { element, box }] of parts.entries()) {
        expect({ width: element.props.style.width, height: element.props.style.height }).toEqual({ width: box.width, height: box.height });
        expect(box.x).toBe(HEADER.x);
        expect(box.x + box.width).toBeLessThan(width);
        expect(Number.isInteger(box.y) && Number.isInteger(box.height)).toBe(true); // bands start on whole pixel rows
        expect(box.y).toBeGreaterThan(i === 0 ? 0 : parts[i - 1]!.box.y + parts[i - 1]!.box.height);
      }
      expect(parts.at(-1)!.box.y + parts.at(-1)!.box.height).toBeLessThan(height);
      // Two rounded shapes (border, then background), whose corners leave the card's corners clear.
      expect(frame.match(/<path /g)).toHaveLength(2);
      expect(frame).toContain(`M16,0 h${width - 32} `);
    }
  });

  it('shows the binding budget in full, then the others nearest their limit first', () => {
    const texts = cardTexts(cardLayout(statusOf(monthly({ reservedTokens: 1_200 }), others(3)), { locale: 'en', now: NOW }));
    expect(texts).toEqual([
      'Quota · Alice',
      'Normal',
      'Alice · monthly (Asia/Shanghai)',
      '78,500',
      '/ 100,000 tokens',
      '78.5%',
      '21,500 tokens left',
      'Resets in 8 d 4 h',
      '· Tue, Dec 1, 00:00 GMT+8',
      '1,200 tokens held by requests in flight',
      'Other budgets',
      'Project p2 · daily (UTC)',
      '78,500 / 100,000 tokens',
      '20%',
      'Project p1 · daily (UTC)',
      '78,500 / 100,000 tokens',
      '10%',
      'Project p0 · daily (UTC)',
      '78,500 / 100,000 tokens',
      '0%',
    ]);
  });

  it('counts the budgets past the cap instead of drawing them', () => {
    const texts = cardTexts(cardLayout(statusOf(monthly(), others(MAX_OTHER_ROWS + 3)), { locale: 'zh', now: NOW }));
    expect(texts.filter((t) => t.startsWith('项目 '))).toHaveLength(MAX_OTHER_ROWS);
    expect(texts.at(-1)).toBe('还有 3 项');
    // The ones shown are the fullest: p8 (80 %) down to p3.
    expect(texts.filter((t) => t.startsWith('项目 ')).map((t) => t.split(' ')[1])).toEqual(['p8', 'p7', 'p6', 'p5', 'p4', 'p3']);
  });

  it('says so when no budget applies, and lists budgets that set no limit', () => {
    expect(cardTexts(cardLayout(statusOf(null), { locale: 'en', now: NOW }))).toEqual([
      'Quota · Alice',
      'Unlimited',
      'No budget applies, so usage is not limited.',
    ]);
    const unlimited = monthly({ limitTokens: null, remainingTokens: null, percentage: 0 });
    expect(cardTexts(cardLayout(statusOf(null, [unlimited]), { locale: 'zh', now: NOW }))).toEqual([
      '额度 · Alice',
      '不限量',
      '没有适用的预算，用量不受限制。',
      '预算',
      'Alice · 每月 (Asia/Shanghai)',
      '78,500 tokens',
      '0%',
    ]);
  });

  it('draws names as plain text on one line', () => {
    const texts = cardTexts(cardLayout(statusOf(monthly(), [], '<img src=x>\n\u202eBob'), { locale: 'en', now: NOW }));
    expect(texts[0]).toBe('Quota · <img src=x> Bob');
  });
});
