import type { StatusLevel, Unit } from '../../server/quota/status.js';
import type { BudgetStatus, QuotaStatus } from '../../server/quota/status-report.js';
import { bindingBudget, type Locale } from '../quota-markdown.js';
import { CARD_COLORS, STATUS_COLORS } from './card-colors.js';
import { cardFormat, plainText, resetText, scopeLabel, unitOf, windowLabel, type CardFormat } from './card-text.js';

/**
 * The quota card for satori: plain `{type, props}` element trees (no JSX), with every block at a
 * fixed height, so the card's size, its parts' places and the main bar's place are known before
 * rendering (the tests sample the bar's pixels where this module says it is). The card is drawn
 * in parts, each an element of its own, so that they can be drawn at the same time (see
 * render-card), inside a frame written directly as SVG.
 */

type Style = Record<string, string | number>;
type Child = CardElement | string;
export interface CardElement {
  type: 'div';
  props: { style: Style; children?: Child | Child[] };
}

/** A rectangle in CSS pixels of the card (multiply by CARD_SCALE for the PNG's pixels). */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const CARD_WIDTH = 640;
/** The PNG has twice the card's CSS pixels, so it stays sharp on high-density screens. */
export const CARD_SCALE = 2;
/** Other budgets listed below the main one; the rest are counted in a "+N more" line. */
export const MAX_OTHER_ROWS = 6;

export const FONT_FAMILY = 'Inter, Noto Sans SC';

const BORDER = 1;
const PAD_X = 24;
const PAD_Y = 20;
const CONTENT_X = BORDER + PAD_X;
const CONTENT_WIDTH = CARD_WIDTH - 2 * CONTENT_X;
const RADIUS = 16;

// Block heights; each block's gap above it is part of its entry here.
const HEAD = { top: 0, height: 30 };
const SCOPE = { top: 0, height: 20 };
const FIGURES = { top: 10, height: 40 };
const BAR = { top: 6, height: 12 };
const FACTS = { top: 10, height: 22 };
const NOTE = { top: 2, height: 18 };
const EMPTY = { top: 12, height: 22 };
/** The other budgets: a rule 1 px high `top` below the blocks above, a heading, rows. */
const SECTION = { top: 16, rule: 1 };
const HEADING = { top: 12, height: 18 };
const ROW = { top: 0, height: 28 };
const MORE = { top: 2, height: 18 };
const MINI_BAR = { width: 96, height: 6 };

/** The title row (title on the left, status badge on the right), in the card's CSS pixels. */
export const HEADER: Box = { x: CONTENT_X, y: BORDER + PAD_Y, width: CONTENT_WIDTH, height: HEAD.height };

/** The main progress bar's track, in the card's CSS pixels. */
export const MAIN_BAR: Box = {
  x: CONTENT_X,
  y: HEADER.y + HEAD.height + SCOPE.top + SCOPE.height + FIGURES.top + FIGURES.height + BAR.top,
  width: CONTENT_WIDTH,
  height: BAR.height,
};

/**
 * Width of a bar's filled part: the percentage of the track, never past its end (an exceeded
 * budget is a full bar), and at least a round dot when anything is used, so 0.2 % still shows.
 */
export function fillWidth(percentage: number, track: Pick<Box, 'width' | 'height'>): number {
  if (!(percentage > 0)) return 0;
  return Math.max(track.height, (Math.min(percentage, 100) / 100) * track.width);
}

export interface CardLayoutOptions {
  locale: Locale;
  /** The instant countdowns are counted from (epoch ms). */
  now: number;
}

/** One part of the card: an element satori lays out on its own, and where it goes on the card. */
export interface CardPart {
  element: CardElement;
  /** In the card's CSS pixels; the element is exactly this size. */
  box: Box;
}

export interface CardLayout {
  width: number;
  height: number;
  /** The card's border and background as SVG, drawn below the parts. */
  frame: string;
  /** Top to bottom, never overlapping: the binding budget (or the empty card), then the other budgets if any. */
  parts: CardPart[];
}

interface Block {
  node: CardElement;
  /** Its gap above plus its own height. */
  height: number;
}

const div = (style: Style, children?: Child | Child[]): CardElement => ({
  type: 'div',
  props: children === undefined ? { style: { display: 'flex', ...style } } : { style: { display: 'flex', ...style }, children },
});

/** Figures in columns line up. Only on numbers: Inter's `tnum` also widens its hyphen. */
const NUMERALS: Style = { fontVariantNumeric: 'tabular-nums' };

const block = (metrics: { top: number; height: number }, style: Style, children: Child | Child[]): Block => ({
  node: div({ marginTop: metrics.top, height: metrics.height, flexShrink: 0, ...style }, children),
  height: metrics.top + metrics.height,
});

/**
 * One line of text that ends in "…" where it would overflow its box. `lineClamp` rather than
 * `overflow: hidden` + `textOverflow`: satori cuts the text itself either way, but `overflow`
 * also adds a clip path, and resvg draws every clip path as a mask the size of the whole image
 * (about 1 ms each at 2×). The card has none for the same reason: borders are drawn as fills.
 */
const line = (text: string, style: Style = {}): CardElement => div({ display: 'block', whiteSpace: 'nowrap', lineClamp: 1, minWidth: 0, ...style }, text);

function bar(percentage: number, status: StatusLevel, track: Pick<Box, 'width' | 'height'>): CardElement {
  return div(
    { width: track.width, height: track.height, borderRadius: track.height / 2, backgroundColor: CARD_COLORS.track, flexShrink: 0 },
    div({ width: fillWidth(percentage, track), height: track.height, borderRadius: track.height / 2, backgroundColor: STATUS_COLORS[status] }),
  );
}

function badge(label: string, color: string): CardElement {
  return div(
    {
      alignItems: 'center',
      height: 26,
      padding: '0 12px 0 10px',
      marginLeft: 12,
      borderRadius: 13,
      backgroundColor: `${color}1f`, // the tone at 12 % on white
      color,
      fontSize: 13,
      fontWeight: 700,
      flexShrink: 0,
    },
    [div({ width: 8, height: 8, borderRadius: 4, backgroundColor: color, marginRight: 6 }), label],
  );
}

function header(title: string, badgeNode: CardElement): Block {
  return block(HEAD, { alignItems: 'center', justifyContent: 'space-between' }, [
    line(title, { fontSize: 20, lineHeight: `${HEAD.height}px`, fontWeight: 700, flexShrink: 1 }),
    badgeNode,
  ]);
}

/** The top of the card: the binding budget (the one nearest its limit) in full. */
function bindingBlocks(status: QuotaStatus & { unit: Unit; usage: number; limit: number }, binding: BudgetStatus, f: CardFormat, now: number): Block[] {
  const t = f.text;
  const tone = STATUS_COLORS[status.status];
  const percentage = status.percentage ?? binding.percentage;
  const reserved = status.unit === 'usd' ? binding.reservedUsd : binding.reservedTokens;
  const reset = resetText(status.nextReset, binding.window, now, t);
  const big: Style = { fontSize: 30, fontWeight: 700, lineHeight: `${FIGURES.height}px`, ...NUMERALS };

  const blocks = [
    header(t.title(plainText(status.subject.name)), badge(t.status[status.status], tone)),
    block(
      SCOPE,
      { color: CARD_COLORS.muted, fontSize: 13, lineHeight: `${SCOPE.height}px` },
      line(`${scopeLabel(binding.scope, status.subject, t)} · ${windowLabel(binding.window, t)}`),
    ),
    block(FIGURES, { alignItems: 'baseline', justifyContent: 'space-between' }, [
      div({ alignItems: 'baseline', minWidth: 0 }, [
        div(big, f.figure(status.usage, status.unit)),
        div({ color: CARD_COLORS.muted, fontSize: 16, marginLeft: 6 }, `/ ${f.amount(status.limit, status.unit)}`),
      ]),
      div({ ...big, color: tone, marginLeft: 16, flexShrink: 0 }, f.percent(percentage)),
    ]),
    block(BAR, {}, bar(percentage, status.status, MAIN_BAR)),
    block(FACTS, { alignItems: 'center', justifyContent: 'space-between', fontSize: 14, lineHeight: `${FACTS.height}px` }, [
      div({ fontWeight: 700, flexShrink: 0, marginRight: 16 }, t.left(f.amount(status.remaining ?? 0, status.unit))),
      div({ justifyContent: 'flex-end', minWidth: 0 }, [
        div({ flexShrink: 0 }, reset.countdown),
        // Satori drops a leading space, so the gap before the "·" is a margin.
        ...(reset.at === null ? [] : [line(`· ${reset.at}`, { color: CARD_COLORS.muted, marginLeft: 5 })]),
      ]),
    ]),
  ];
  if (reserved > 0) {
    blocks.push(block(NOTE, { color: CARD_COLORS.muted, fontSize: 12, lineHeight: `${NOTE.height}px` }, line(t.reserved(f.amount(reserved, status.unit)))));
  }
  return blocks;
}

function otherRow(b: BudgetStatus, status: QuotaStatus, f: CardFormat): CardElement {
  const unit = unitOf(b);
  const tone = STATUS_COLORS[b.status];
  const used = unit === 'usd' ? b.usedUsd : b.usedTokens;
  const limit = unit === 'usd' ? b.limitUsd : b.limitTokens;
  const reserved = unit === 'usd' ? b.reservedUsd : b.reservedTokens;
  const held = reserved > 0 ? ` · ${f.text.held(f.figure(reserved, unit))}` : '';
  // A budget that limits neither unit (possible in config) shows what was used, without "/ 0".
  const figures = limit === null ? f.amount(used, unit) : `${f.figure(used, unit)} / ${f.amount(limit, unit)}`;
  return div({ height: ROW.height, alignItems: 'center', fontSize: 13, flexShrink: 0 }, [
    div({ width: 8, height: 8, borderRadius: 4, backgroundColor: tone, marginRight: 10, flexShrink: 0 }),
    line(`${scopeLabel(b.scope, status.subject, f.text)} · ${windowLabel(b.window, f.text)}`, { flexGrow: 1, flexShrink: 1 }),
    div({ marginLeft: 12, color: CARD_COLORS.muted, flexShrink: 0, ...NUMERALS }, `${figures}${held}`),
    // Bars and percentages in columns of their own, so the rows read as a table.
    div({ marginLeft: 14 }, bar(b.percentage, b.status, MINI_BAR)),
    div({ width: 56, justifyContent: 'flex-end', color: tone, fontWeight: 700, flexShrink: 0, ...NUMERALS }, f.percent(b.percentage)),
  ]);
}

/** The other budgets, nearest their limit first, at most MAX_OTHER_ROWS of them: a part SECTION.top below the one above. */
function othersBlock(others: readonly BudgetStatus[], heading: string, status: QuotaStatus, f: CardFormat): Block {
  const shown = [...others].sort((a, b) => b.percentage - a.percentage).slice(0, MAX_OTHER_ROWS);
  const hidden = others.length - shown.length;
  const height = SECTION.rule + HEADING.top + HEADING.height + shown.length * ROW.height + (hidden > 0 ? MORE.top + MORE.height : 0);
  const children: CardElement[] = [
    div({ height: SECTION.rule, backgroundColor: CARD_COLORS.line }),
    div({ marginTop: HEADING.top, height: HEADING.height, color: CARD_COLORS.muted, fontSize: 12, fontWeight: 700, lineHeight: `${HEADING.height}px`, letterSpacing: 0.4 }, heading),
    ...shown.map((b) => otherRow(b, status, f)),
  ];
  if (hidden > 0) {
    children.push(div({ marginTop: MORE.top, height: MORE.height, color: CARD_COLORS.muted, fontSize: 12, lineHeight: `${MORE.height}px` }, f.text.more(hidden)));
  }
  return { node: div({ flexDirection: 'column', height, flexShrink: 0 }, children), height };
}

/**
 * A rounded rectangle as the path satori writes for a box with `borderRadius`, so the frame's
 * pixels are those the card had when satori drew it as two nested boxes.
 */
function roundedRect({ x, y, width, height }: Box, r: number, fill: string): string {
  const [w, h] = [width - 2 * r, height - 2 * r];
  return `<path fill="${fill}" d="M${x + r},${y} h${w} a${r},${r} 0 0 1 ${r},${r} v${h} a${r},${r} 0 0 1 -${r},${r} h-${w} a${r},${r} 0 0 1 -${r},-${r} v-${h} a${r},${r} 0 0 1 ${r},-${r}"/>`;
}

/**
 * The border is the outer shape's fill showing around the inner one: fills, not strokes or clip
 * paths (see `line`).
 */
function frame(width: number, height: number): string {
  return (
    roundedRect({ x: 0, y: 0, width, height }, RADIUS, CARD_COLORS.border) +
    roundedRect({ x: BORDER, y: BORDER, width: width - 2 * BORDER, height: height - 2 * BORDER }, RADIUS - BORDER, CARD_COLORS.background)
  );
}

/**
 * Blocks stacked in a part of their own. Its size is fixed (satori's boxes are content-box by
 * default): a box left to grow would widen to fit an unwrapped line before cutting it.
 */
function part(blocks: readonly Block[], y: number): CardPart {
  const height = blocks.reduce((sum, b) => sum + b.height, 0);
  const style: Style = { flexDirection: 'column', width: CONTENT_WIDTH, height, color: CARD_COLORS.text, fontFamily: FONT_FAMILY };
  return { element: div(style, blocks.map((b) => b.node)), box: { x: CONTENT_X, y, width: CONTENT_WIDTH, height } };
}

/** The card for one `/quota` status: what the web card shows, drawn once. */
export function cardLayout(status: QuotaStatus, { locale, now }: CardLayoutOptions): CardLayout {
  const f = cardFormat(locale);
  const binding = bindingBudget(status);
  const top =
    binding && status.unit !== null && status.usage !== null && status.limit !== null
      ? bindingBlocks({ ...status, unit: status.unit, usage: status.usage, limit: status.limit }, binding, f, now)
      : [
          header(f.text.title(plainText(status.subject.name)), badge(f.text.unlimited, CARD_COLORS.muted)),
          block(EMPTY, { color: CARD_COLORS.muted, fontSize: 14, lineHeight: `${EMPTY.height}px` }, line(f.text.none)),
        ];
  const parts = [part(top, BORDER + PAD_Y)];
  const others = status.budgets.filter((b) => b !== binding);
  if (others.length > 0) {
    const above = parts[0]!.box;
    parts.push(part([othersBlock(others, binding ? f.text.others : f.text.budgets, status, f)], above.y + above.height + SECTION.top));
  }
  const last = parts[parts.length - 1]!.box;
  const height = last.y + last.height + PAD_Y + BORDER;
  return { width: CARD_WIDTH, height, frame: frame(CARD_WIDTH, height), parts };
}
