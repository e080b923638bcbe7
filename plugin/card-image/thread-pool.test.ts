import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ThreadPool } from './thread-pool.js';

/** A worker that doubles numbers, and fails on demand in each way a worker can. */
const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ id, job }) => {
  if (job === 'exit') process.exit(3);
  else if (job === 'throw') setImmediate(() => { throw new Error('boom'); });
  else if (job === 'hang') for (;;);
  else if (job === 'refuse') parentPort.postMessage({ id, error: 'cannot draw that' });
  else if (job === 'slow') setTimeout(() => parentPort.postMessage({ id, result: 'slow' }), 200);
  else if (job.meet) {
    // 'met' once 'of' jobs (on as many threads) have come to the same meeting, 'alone' after 5 s.
    const arrived = new Int32Array(job.meet);
    Atomics.add(arrived, 0, 1);
    Atomics.notify(arrived, 0);
    for (let now = Atomics.load(arrived, 0); now < job.of; now = Atomics.load(arrived, 0)) {
      if (Atomics.wait(arrived, 0, now, 5_000) === 'timed-out') return parentPort.postMessage({ id, result: 'alone' });
    }
    parentPort.postMessage({ id, result: 'met' });
  }
  else parentPort.postMessage({ id, result: job * 2 });
});`;

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
});

function pool({ size = 2, timeoutMs = 5_000, idleMs }: { size?: number; timeoutMs?: number; idleMs?: number } = {}): ThreadPool<unknown, unknown> {
  return new ThreadPool({
    size,
    timeoutMs,
    ...(idleMs === undefined ? {} : { idleMs }),
    start: () => {
      const worker = new Worker(WORKER, { eval: true });
      started.push(worker);
      return worker;
    },
  });
}

describe('ThreadPool', () => {
  it('starts workers as jobs need them, never more than its size, and answers each job', async () => {
    const threads = pool({ size: 2 });
    expect(started).toHaveLength(0);
    expect(await threads.run(1)).toBe(2);
    expect(started).toHaveLength(1); // the idle worker took the next job too
    expect(await threads.run(2)).toBe(4);
    expect(started).toHaveLength(1);
    expect(await Promise.all([1, 2, 3, 4, 5].map((n) => threads.run(n)))).toEqual([2, 4, 6, 8, 10]);
    expect(started).toHaveLength(2);
  });

  it('stops a worker left idle for idleMs, and starts a new one for the next job', async () => {
    const threads = pool({ size: 1, idleMs: 20 });
    expect(await threads.run(1)).toBe(2);
    const [first] = started;
    await new Promise((resolve) => first?.once('exit', resolve));
    expect(await threads.run(2)).toBe(4);
    expect(started).toHaveLength(2);
  });

  it('runs jobs side by side, one per worker', async () => {
    const threads = pool({ size: 2 });
    const meeting = { meet: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT), of: 2 };
    expect(await Promise.all([threads.run(meeting), threads.run(meeting)])).toEqual(['met', 'met']);
  });

  it('fails a job its worker refuses, and keeps the worker', async () => {
    const threads = pool({ size: 1 });
    await expect(threads.run('refuse')).rejects.toThrow('cannot draw that');
    expect(await threads.run(21)).toBe(42);
    expect(started).toHaveLength(1);
  });

  it.each(['exit', 'throw'])('fails the job of a worker that crashes (%s), and the next job gets a new worker', async (how) => {
    const threads = pool({ size: 1 });
    const crash = threads.run(how);
    const queued = threads.run(5); // waiting for the only worker
    await expect(crash).rejects.toThrow(how === 'exit' ? /exit code 3/ : /boom/);
    expect(await queued).toBe(10);
    expect(started).toHaveLength(2);
  });

  it('fails the job of a worker stopped while working on it', async () => {
    const threads = pool({ size: 1 });
    const job = threads.run('slow');
    await started[0]!.terminate();
    await expect(job).rejects.toThrow(/stopped/);
    expect(await threads.run(4)).toBe(8);
  });

  it('never waits forever: a job unanswered in time fails, its worker is stopped, the next job runs', async () => {
    const threads = pool({ size: 1, timeoutMs: 300 });
    await expect(threads.run('hang')).rejects.toThrow(/no answer in 300 ms/);
    expect(await threads.run(3)).toBe(6);
    expect(started).toHaveLength(2);
  });

  it('fails a job that cannot be sent to a worker, and goes on', async () => {
    const threads = pool({ size: 1 });
    await expect(threads.run(() => 1)).rejects.toThrow(/could not be cloned/);
    expect(await threads.run(7)).toBe(14);
    expect(started).toHaveLength(1);
  });

  it('fails a job when no worker can be started, and tries again for the next', async () => {
    let attempts = 0;
    const threads = new ThreadPool<number, number>({
      size: 1,
      timeoutMs: 5_000,
      start: () => {
        if (attempts++ === 0) throw new Error('no threads left');
        const worker = new Worker(WORKER, { eval: true });
        started.push(worker);
        return worker;
      },
    });
    await expect(threads.run(1)).rejects.toThrow('no threads left');
    expect(await threads.run(1)).toBe(2);
  });
});
