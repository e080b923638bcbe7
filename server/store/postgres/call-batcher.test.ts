import { describe, expect, it } from 'vitest';
import { CallBatcher } from './call-batcher.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A batcher whose calls finish when the test says so. */
function recording(options: { calls: number; maxPerCall: number }) {
  const calls: Array<{ batch: number[]; finish: () => void }> = [];
  const batcher = new CallBatcher<number>(
    (batch) =>
      new Promise<void>((resolve) => {
        calls.push({ batch, finish: resolve });
      }),
    options,
  );
  return { batcher, calls };
}

describe('CallBatcher', () => {
  it('sends what arrives in one turn of the event loop in one call, in arrival order', async () => {
    const { batcher, calls } = recording({ calls: 2, maxPerCall: 100 });
    for (const n of [1, 2, 3]) batcher.push(n);
    expect(calls).toHaveLength(0);
    await nextTurn();
    expect(calls.map((c) => c.batch)).toEqual([[1, 2, 3]]);
  });

  it('runs at most `calls` at once; what arrives meanwhile goes together in the next, when one finishes', async () => {
    const { batcher, calls } = recording({ calls: 2, maxPerCall: 100 });
    batcher.push(1);
    await nextTurn();
    batcher.push(2);
    await nextTurn();
    for (const n of [3, 4, 5]) batcher.push(n);
    await nextTurn();
    await nextTurn();
    expect(calls.map((c) => c.batch)).toEqual([[1], [2]]);
    calls[0]?.finish();
    await nextTurn();
    expect(calls.map((c) => c.batch)).toEqual([[1], [2], [3, 4, 5]]);
  });

  it('splits a queue longer than maxPerCall, and drain() waits for every call', async () => {
    const { batcher, calls } = recording({ calls: 4, maxPerCall: 2 });
    for (const n of [1, 2, 3, 4, 5]) batcher.push(n);
    let drained = false;
    const draining = batcher.drain().then(() => {
      drained = true;
    });
    expect(calls.map((c) => c.batch)).toEqual([[1, 2], [3, 4], [5]]);
    for (const call of calls) call.finish();
    await draining;
    expect(drained).toBe(true);
  });
});
