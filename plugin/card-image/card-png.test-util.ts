import { PNG } from 'pngjs';
import type { StatusLevel } from '../../server/quota/status.js';
import type { BudgetStatus } from '../../server/quota/status-report.js';
import { CARD_COLORS } from './card-colors.js';
import { CARD_SCALE, fillWidth, MAIN_BAR, type Box } from './card-layout.js';
import { monthly } from '../quota-status.test-util.js';

// The status fixtures live beside the Markdown's tests, which use them too.
export { monthly, NOW, statusOf } from '../quota-status.test-util.js';

/** A budget of `percentage` % at `status`, for the bar colour cases. */
export const atLevel = (percentage: number, status: StatusLevel): BudgetStatus =>
  monthly({ percentage, status, usedTokens: percentage * 1_000, remainingTokens: Math.max(0, 100_000 - percentage * 1_000) });

export const decodePng = (png: Buffer): PNG => PNG.sync.read(png);

/** `#rrggbb` → [r, g, b, 255]. */
export const opaque = (hex: string): number[] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).concat(255);

/** The RGBA of the pixel at the card's CSS point (x, y), i.e. the PNG pixel CARD_SCALE times further. */
export function pixelAt(image: PNG, x: number, y: number): number[] {
  const i = (Math.floor(y * CARD_SCALE) * image.width + Math.floor(x * CARD_SCALE)) * 4;
  return [...image.data.subarray(i, i + 4)];
}

/** Points in the middle of the main bar's filled part and of its empty part (null where there is none). */
export function barPoints(percentage: number): { filled: [number, number] | null; empty: [number, number] | null } {
  const fill = fillWidth(percentage, MAIN_BAR);
  const y = MAIN_BAR.y + MAIN_BAR.height / 2;
  return {
    filled: fill > 0 ? [MAIN_BAR.x + fill / 2, y] : null,
    empty: fill < MAIN_BAR.width ? [MAIN_BAR.x + fill + (MAIN_BAR.width - fill) / 2, y] : null,
  };
}

/** How many PNG pixels inside `box` (CSS pixels) are not the card's background: the ink of its text. */
export function inkIn(image: PNG, box: Box): number {
  const background = opaque(CARD_COLORS.background);
  let ink = 0;
  for (let y = box.y * CARD_SCALE; y < (box.y + box.height) * CARD_SCALE; y++) {
    for (let x = box.x * CARD_SCALE; x < (box.x + box.width) * CARD_SCALE; x++) {
      const i = (y * image.width + x) * 4;
      if ([0, 1, 2, 3].some((c) => image.data[i + c] !== background[c])) ink++;
    }
  }
  return ink;
}
