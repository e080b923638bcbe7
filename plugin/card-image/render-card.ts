import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { QuotaStatus } from '../../server/quota/status-report.js';
import { cardBands, type BandJob } from './card-band.js';
import { CARD_SCALE, cardLayout, type CardLayoutOptions } from './card-layout.js';
import { assemblePng, type PngBand } from './png-encode.js';
import { ThreadPool } from './thread-pool.js';

export interface CardImage {
  png: Buffer;
  /** In the PNG's pixels: the card's CSS size times CARD_SCALE. */
  width: number;
  height: number;
}

/** One per part of the card (it has at most two), so its parts are drawn at the same time. */
const THREADS = 2;
/** A band takes ~10 ms; a worker's first also reads and parses the fonts (~0.3 s). */
const BAND_TIMEOUT_MS = 10_000;
/**
 * The workers hold ~170 MB between them (their heaps and parsed fonts): given back after five
 * minutes without a card, at the price of ~0.6 s on the next card's first render.
 */
const THREADS_IDLE_MS = 5 * 60_000;

/**
 * The worker's script. Beside this module in dist/; when the tests run the TypeScript sources
 * (which a worker cannot load), the build in dist/ that their global setup makes.
 */
function workerScript(): URL {
  const beside = new URL('./card-worker.js', import.meta.url);
  return existsSync(fileURLToPath(beside)) ? beside : new URL('../../dist/plugin/card-image/card-worker.js', import.meta.url);
}

export type CardThreads = ThreadPool<BandJob, PngBand>;

export const startCardWorker = (): Worker => new Worker(workerScript());

const cardThreads: CardThreads = new ThreadPool({ start: startCardWorker, size: THREADS, timeoutMs: BAND_TIMEOUT_MS, idleMs: THREADS_IDLE_MS });

/**
 * The quota card as a PNG, without a browser. The layout (card-layout) splits the card into parts
 * of known size; each part's band of the card is laid out with its text as paths (satori), drawn
 * (resvg) and deflated on a worker thread of its own, and the bands are joined into one PNG. The
 * event loop only lays out the element trees and joins the bands, a millisecond or two that is
 * all a render holds up the proxy's streams for. `threads`: the pool to draw on (tests pass theirs).
 */
export async function renderQuotaCard(status: QuotaStatus, options: CardLayoutOptions, threads: CardThreads = cardThreads): Promise<CardImage> {
  const layout = cardLayout(status, options);
  const bands = await Promise.all(cardBands(layout).map((band) => threads.run(band)));
  const [width, height] = [layout.width * CARD_SCALE, layout.height * CARD_SCALE];
  return { png: assemblePng(width, height, bands), width, height };
}
