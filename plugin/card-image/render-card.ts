import { renderAsync } from '@resvg/resvg-js';
import satori from 'satori';
import type { QuotaStatus } from '../../server/quota/status-report.js';
import { cardFonts } from './card-fonts.js';
import { CARD_SCALE, cardLayout, type CardLayoutOptions } from './card-layout.js';
import { encodePng } from './png-encode.js';

export interface CardImage {
  png: Buffer;
  /** In the PNG's pixels: the card's CSS size times CARD_SCALE. */
  width: number;
  height: number;
}

/**
 * The quota card as a PNG, without a browser: the element tree (card-layout) → SVG with the text
 * as paths (satori) → pixels (resvg, with no fonts of its own: it never needs any) → PNG.
 * resvg draws and zlib deflates in libuv's thread pool, so a render holds up the proxy's streams
 * only for satori's part and the copying of rows (see png-encode).
 */
export async function renderQuotaCard(status: QuotaStatus, options: CardLayoutOptions): Promise<CardImage> {
  const fonts = await cardFonts();
  const { element, width, height } = cardLayout(status, options);
  const svg = await satori(element, { width, height, fonts });
  const image = await renderAsync(svg, { fitTo: { mode: 'zoom', value: CARD_SCALE }, font: { loadSystemFonts: false } });
  return { png: await encodePng(image.pixels, image.width, image.height), width: image.width, height: image.height };
}
