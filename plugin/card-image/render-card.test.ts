import { Resvg } from '@resvg/resvg-js';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import satori from 'satori';
import { describe, expect, it } from 'vitest';
import type { QuotaStatus } from '../../server/quota/status-report.js';
import { projectRoot } from '../project-root.js';
import { CARD_COLORS, STATUS_COLORS } from './card-colors.js';
import { cardFonts } from './card-fonts.js';
import { CARD_SCALE, CARD_WIDTH, cardLayout, HEADER, MAX_OTHER_ROWS, type CardElement, type CardLayout } from './card-layout.js';
import { atLevel, barPoints, decodePng, inkIn, monthly, NOW, opaque, pixelAt, statusOf } from './card-png.test-util.js';
import { renderQuotaCard } from './render-card.js';

/** The README's pictures with UPDATE_SCREENSHOTS=1 (as the browser tests do), else test-results/. */
const shots = process.env.UPDATE_SCREENSHOTS ? path.join(projectRoot(), 'docs', 'screenshots') : path.join(projectRoot(), 'test-results', 'screenshots');

const MAX_PNG_BYTES = 150 * 1024;

/** Alice near the end of her month, her project's dollars and the company's tokens below. */
const aliceStatus = (name = 'Alice') =>
  statusOf(
    monthly({ usedTokens: 78_500, reservedTokens: 1_200, remainingTokens: 20_300 }),
    [
      monthly({ id: 'p', scope: 'project:research', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: null, usedUsd: 6.2, limitUsd: 10, remainingUsd: 3.8, percentage: 62, resetsAt: '2026-11-23T00:00:00Z' }),
      monthly({ id: 'k', scope: 'key:key_4f9aQ2xLbT0c', window: { kind: 'rolling', hours: 5 }, usedTokens: 12_000, limitTokens: 20_000, percentage: 60, resetsAt: null }),
      monthly({ id: 'g', scope: 'global', window: { kind: 'month', timeZone: 'UTC' }, usedTokens: 9_100_000, limitTokens: 10_000_000, percentage: 91, status: 'warning' }),
    ],
    name,
  );

/** 张伟 past 95 % of his daily dollars, with a weekly token budget of his project beside it. */
const zhangStatus = () =>
  statusOf(
    monthly({ scope: 'user:alice', window: { kind: 'day', timeZone: 'Asia/Shanghai' }, limitTokens: null, usedUsd: 9.6, limitUsd: 10, remainingUsd: 0.28, reservedUsd: 0.12, percentage: 96, status: 'critical', resetsAt: '2026-11-23T00:00:00+08:00' }),
    [monthly({ id: 'w', scope: 'project:研究组', window: { kind: 'week', timeZone: 'Asia/Shanghai' }, usedTokens: 412_000, limitTokens: 1_000_000, percentage: 41.2, resetsAt: '2026-11-23T00:00:00+08:00' })],
    '张伟',
  );

describe('renderQuotaCard', () => {
  it('draws a PNG of the layout’s size at 2×, small enough to send inline', async () => {
    const status = aliceStatus();
    const { png, width, height } = await renderQuotaCard(status, { locale: 'en', now: NOW });
    const image = decodePng(png);
    const layout = cardLayout(status, { locale: 'en', now: NOW });
    expect([image.width, image.height]).toEqual([CARD_WIDTH * CARD_SCALE, layout.height * CARD_SCALE]);
    expect([width, height]).toEqual([image.width, image.height]);
    expect(png.length).toBeLessThanOrEqual(MAX_PNG_BYTES);

    // Its own opaque card with transparent rounded corners: it reads the same on a light or dark chat.
    expect(pixelAt(image, 0, 0)[3]).toBe(0);
    expect(pixelAt(image, CARD_WIDTH - 1, layout.height - 1)[3]).toBe(0);
    expect(pixelAt(image, CARD_WIDTH / 2, 0.5)).toEqual(opaque(CARD_COLORS.border));
    expect(pixelAt(image, CARD_WIDTH / 2, HEADER.y - 4)).toEqual(opaque(CARD_COLORS.background));

    const { filled, empty } = barPoints(78.5);
    expect(pixelAt(image, ...filled!)).toEqual(opaque(STATUS_COLORS.normal));
    expect(pixelAt(image, ...empty!)).toEqual(opaque(CARD_COLORS.track));
  });

  it('writes Chinese in Chinese: different pixels, glyphs in the title in both', async () => {
    const status = aliceStatus('张伟');
    const english = decodePng((await renderQuotaCard(status, { locale: 'en', now: NOW })).png);
    const chinese = decodePng((await renderQuotaCard(status, { locale: 'zh', now: NOW })).png);
    expect([chinese.width, chinese.height]).toEqual([english.width, english.height]);
    expect(Buffer.compare(english.data, chinese.data)).not.toBe(0);
    // The title's left half: "Quota · 张伟" and "额度 · 张伟", both drawn (the fonts have every glyph).
    const title = { ...HEADER, width: HEADER.width / 2 };
    const [inkEn, inkZh] = [inkIn(english, title), inkIn(chinese, title)];
    expect(inkEn).toBeGreaterThan(1_000);
    expect(inkZh).toBeGreaterThan(1_000);
    expect(inkZh).not.toBe(inkEn);
  });

  it('draws any name: markup and control characters as text, glyphs the fonts lack left out, long names cut', async () => {
    const plain = await renderQuotaCard(aliceStatus(), { locale: 'en', now: NOW });
    for (const name of ['<script>alert(1)</script>\u0000\r\n', '\u202eevil\u202c 🎉 ひらがな مرحبا 𠀀', 'W'.repeat(5_000), '', ' ']) {
      const card = await renderQuotaCard(aliceStatus(name), { locale: 'zh', now: NOW });
      const image = decodePng(card.png);
      // One line whatever the name: the layout, and so the bar's place, never moves.
      expect([image.width, image.height]).toEqual([plain.width, plain.height]);
      expect(pixelAt(image, ...barPoints(78.5).filled!)).toEqual(opaque(STATUS_COLORS.normal));
    }
  });

  it('draws the card of someone no budget applies to', async () => {
    const status = statusOf(null);
    const { png } = await renderQuotaCard(status, { locale: 'en', now: NOW });
    const image = decodePng(png);
    expect(image.height).toBe(cardLayout(status, { locale: 'en', now: NOW }).height * CARD_SCALE);
    expect(inkIn(image, { ...HEADER, width: HEADER.width / 2 })).toBeGreaterThan(1_000);
  });

  it('makes the README’s screenshots (docs/screenshots with UPDATE_SCREENSHOTS=1)', async () => {
    mkdirSync(shots, { recursive: true });
    const english = await renderQuotaCard(aliceStatus(), { locale: 'en', now: NOW });
    const chinese = await renderQuotaCard(zhangStatus(), { locale: 'zh', now: NOW });
    writeFileSync(path.join(shots, 'mcp-card-en.png'), english.png);
    writeFileSync(path.join(shots, 'mcp-card-zh.png'), chinese.png);
    expect(pixelAt(decodePng(chinese.png), ...barPoints(96).filled!)).toEqual(opaque(STATUS_COLORS.critical));
  });
});

/**
 * The card as it was drawn before it was split into parts: one element tree, the frame as two
 * nested rounded boxes (a border-coloured one showing 1 px around the background-coloured one),
 * one satori layout, one resvg drawing and resvg's own PNG encoder. Only here, as the reference.
 */
async function singlePass({ width, height, parts }: CardLayout): Promise<Buffer> {
  const div = (style: Record<string, string | number>, children: CardElement | CardElement[]): CardElement => ({ type: 'div', props: { style: { display: 'flex', ...style }, children } });
  const [first] = parts;
  const placed = parts.map(({ element, box }, i) => {
    const above = parts[i - 1]?.box;
    return div({ marginTop: above ? box.y - (above.y + above.height) : 0, flexShrink: 0 }, element);
  });
  const element = div(
    { boxSizing: 'border-box', width, height, padding: 1, borderRadius: 16, backgroundColor: CARD_COLORS.border },
    div(
      {
        flexDirection: 'column',
        boxSizing: 'border-box',
        width: width - 2,
        height: height - 2,
        padding: `${first!.box.y - 1}px ${first!.box.x - 1}px`,
        borderRadius: 15,
        backgroundColor: CARD_COLORS.background,
      },
      placed,
    ),
  );
  const svg = await satori(element, { width, height, fonts: await cardFonts() });
  return new Resvg(svg, { fitTo: { mode: 'zoom', value: CARD_SCALE }, font: { loadSystemFonts: false } }).render().asPng();
}

const budgetsOf = (count: number) =>
  Array.from({ length: count }, (_, i) => monthly({ id: `p${i}`, scope: `project:p${i}`, window: { kind: 'day', timeZone: 'UTC' }, percentage: 11 * i, status: 11 * i >= 80 ? 'warning' : 'normal' }));

describe('renderQuotaCard draws its parts apart', () => {
  const cases: Array<[string, QuotaStatus, 'en' | 'zh']> = [
    ['Alice with three other budgets', aliceStatus(), 'en'],
    ['张伟 past 95 %, in Chinese', zhangStatus(), 'zh'],
    ['the tallest card: six rows and “+2 more”', statusOf(atLevel(104, 'exceeded'), budgetsOf(MAX_OTHER_ROWS + 2)), 'en'],
    ['a single budget', statusOf(atLevel(85, 'warning')), 'zh'],
    ['no budget at all', statusOf(null), 'en'],
  ];
  it.each(cases)('and the card looks as when it was drawn in one piece: %s', async (_, status, locale) => {
    const layout = cardLayout(status, { locale, now: NOW });
    const [split, whole] = [decodePng((await renderQuotaCard(status, { locale, now: NOW })).png), decodePng(await singlePass(layout))];
    expect([split.width, split.height]).toEqual([whole.width, whole.height]);
    let near = 0;
    for (let i = 0; i < whole.data.length; i += 4) {
      const worst = Math.max(...[0, 1, 2, 3].map((c) => Math.abs((split.data[i + c] as number) - (whole.data[i + c] as number))));
      if (worst <= 2) near++;
    }
    expect(near / (whole.width * whole.height)).toBeGreaterThanOrEqual(0.999);
  });

  it('on worker threads that leave a finished process free to end', async () => {
    const renderer = pathToFileURL(path.join(projectRoot(), 'dist', 'plugin', 'card-image', 'render-card.js')).href;
    const script = `import(${JSON.stringify(renderer)})
      .then(({ renderQuotaCard }) => renderQuotaCard(${JSON.stringify(aliceStatus())}, { locale: 'en', now: ${NOW} }))
      .then(({ png }) => console.log(png.length));`;
    // No exit() and no timer: the process ends once the render is done, or the test times out.
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 15_000 });
    expect(Number(stdout)).toBeGreaterThan(10_000);
  });
});
