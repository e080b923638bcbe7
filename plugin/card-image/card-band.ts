import { Resvg } from '@resvg/resvg-js';
import satori, { type Font } from 'satori';
import { CARD_SCALE, type CardLayout, type CardPart } from './card-layout.js';
import { pngBand, type PngBand } from './png-encode.js';

/**
 * A band of the card: full width, from one part's top to the next part's, holding that part and
 * the frame behind it. Bands are drawn apart, each on a worker thread, and joined as PNG data.
 */
export interface BandJob {
  part: CardPart;
  card: { width: number; height: number; frame: string };
  /** The card's rows it covers, in CSS pixels: from `top` up to `bottom`. */
  top: number;
  bottom: number;
}

/**
 * One band per part. A part draws nothing outside its box, so each band holds everything that
 * shows in it; the first band also takes the card's top edge, the last its bottom edge.
 */
export function cardBands({ width, height, frame, parts }: CardLayout): BandJob[] {
  return parts.map((part, i) => ({
    part,
    card: { width, height, frame },
    top: i === 0 ? 0 : part.box.y,
    bottom: parts[i + 1]?.box.y ?? height,
  }));
}

/**
 * The band's part laid out (satori: text → paths), drawn (resvg, with no fonts: it needs none) and
 * deflated. resvg draws synchronously: this runs on a worker thread, and `renderAsync` (another
 * thread hop) made renders 1.5-3.5 ms slower and used more CPU. A Resvg object's native memory is
 * freed by a finalizer that Node runs on a later turn of the event loop, which the worker takes
 * between jobs; a loop that drew without ever yielding would grow by the drawing each time.
 */
export async function drawBand(job: BandJob, fonts: Font[]): Promise<PngBand> {
  const { element, box } = job.part;
  const partSvg = await satori(element, { width: box.width, height: box.height, fonts });
  const image = new Resvg(bandSvg(job, partSvg), { fitTo: { mode: 'zoom', value: CARD_SCALE }, font: { loadSystemFonts: false } }).render();
  return pngBand(image.pixels, image.width, image.height);
}

/**
 * The frame, then the part's drawing moved to its place, seen through a viewBox of the band's
 * rows. The part's own `<svg>` tag is dropped rather than nested: a nested viewport is a clip,
 * which resvg would draw as a mask the size of the image. Satori's ids (of masks that nothing
 * references, here) cannot clash: a band holds one part.
 */
export function bandSvg({ part: { box }, card, top, bottom }: BandJob, partSvg: string): string {
  const content = partSvg.slice(partSvg.indexOf('>') + 1, partSvg.lastIndexOf('</svg>'));
  const height = bottom - top;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${card.width}" height="${height}" viewBox="0 ${top} ${card.width} ${height}">` +
    `${card.frame}<g transform="translate(${box.x} ${box.y})">${content}</g></svg>`
  );
}
