import { describe, expect, it } from 'vitest';
import { runSteps, type Steps } from './maybe-sync.js';

/** Adds up what it is handed, catching a failure of the step `failing` as an await's try would. */
function* sum(values: ReadonlyArray<number | Promise<number>>, failing = -1): Steps<number> {
  let total = 0;
  for (const [i, value] of values.entries()) {
    try {
      total += (yield value) as number;
    } catch (error) {
      if (i !== failing) throw error;
      total += 1000;
    }
  }
  return total;
}

describe('runSteps', () => {
  it('answers with a value, not a promise, when no step is a promise', () => {
    expect(runSteps(sum([1, 2, 3]))).toBe(6);
  });

  it('answers with a promise once a step is one, and runs the steps after it', async () => {
    const result = runSteps(sum([1, Promise.resolve(2), 3, Promise.resolve(4)]));
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe(10);
  });

  it('hands a rejection to the generator where it yielded, as an await would', async () => {
    await expect(runSteps(sum([1, Promise.reject(new Error('no')), 3], 1))).resolves.toBe(1004);
    await expect(runSteps(sum([1, Promise.reject(new Error('no')), 3]))).rejects.toThrow('no');
  });

  it('throws what the generator throws before any promise, and rejects with what it throws after one', async () => {
    function* failing(first: number | Promise<number>): Steps<number> {
      yield first;
      throw new Error('bad step');
    }
    expect(() => runSteps(failing(1))).toThrow('bad step');
    await expect(runSteps(failing(Promise.resolve(1)))).rejects.toThrow('bad step');
  });
});
