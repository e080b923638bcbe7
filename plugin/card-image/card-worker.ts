/**
 * A card-drawing thread (see render-card.ts): draws bands of the card, one job at a time, with
 * fonts it reads and satori parses once.
 */
import { parentPort } from 'node:worker_threads';
import { drawBand, type BandJob } from './card-band.js';
import { cardFonts } from './card-fonts.js';
import type { PngBand } from './png-encode.js';
import type { ThreadJob, ThreadReply } from './thread-pool.js';

const port = parentPort;
if (!port) throw new Error('card-worker: not in a worker thread');
// Read while the first job is on its way; a failure is the first job's to report (cardFonts retries).
cardFonts().catch(() => undefined);
port.on('message', ({ id, job }: ThreadJob<BandJob>) => {
  cardFonts()
    .then((fonts) => drawBand(job, fonts))
    .then(
      (result) => port.postMessage({ id, result } satisfies ThreadReply<PngBand>),
      (error: unknown) => port.postMessage({ id, error: error instanceof Error ? error.message : String(error) } satisfies ThreadReply<PngBand>),
    );
});
