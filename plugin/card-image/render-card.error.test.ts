import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { cardBands } from './card-band.js';
import { cardLayout } from './card-layout.js';
import { monthly, NOW, statusOf } from './card-png.test-util.js';
import { renderQuotaCard, startCardWorker, type CardThreads } from './render-card.js';
import { ThreadPool } from './thread-pool.js';

/** The card's own worker threads, in a pool of the test's, so the test can stop them. */
const started: Worker[] = [];
const threads = (): CardThreads =>
  new ThreadPool({
    size: 2,
    timeoutMs: 10_000,
    start: () => {
      const worker = startCardWorker();
      started.push(worker);
      return worker;
    },
  });

afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
});

const status = statusOf(monthly(), [monthly({ id: 'g', scope: 'global', percentage: 40 })]);
const options = { locale: 'en' as const, now: NOW };

describe('renderQuotaCard when a worker fails', () => {
  it('rejects the render whose worker stops mid-job; the next render is whole', async () => {
    const pool = threads();
    const expected = (await renderQuotaCard(status, options)).png;
    const render = renderQuotaCard(status, options, pool);
    expect(started).toHaveLength(2); // one per part, both with a job now
    await started[1]!.terminate();
    await expect(render).rejects.toThrow(/stopped/);
    expect((await renderQuotaCard(status, options, pool)).png.equals(expected)).toBe(true);
  });

  it('rejects the render of a band the worker cannot draw, and keeps the worker', async () => {
    const pool = threads();
    const [band] = cardBands(cardLayout(status, options));
    await expect(pool.run({ ...band!, bottom: band!.top })).rejects.toThrow(/invalid size/); // a band with no rows
    expect(started).toHaveLength(1);
    expect((await renderQuotaCard(status, options, pool)).png.length).toBeGreaterThan(10_000);
    expect(started).toHaveLength(2); // the second part's worker
  });
});
