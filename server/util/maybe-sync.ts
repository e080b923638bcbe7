/** A value now, or one to wait for. */
export type MaybePromise<T> = T | Promise<T>;

/** Steps written as a generator: each `yield` hands over a value, or a promise to wait for, and gets back what it holds. */
export type Steps<T> = Generator<unknown, T, unknown>;

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';

/**
 * Runs `steps` as an async function would run with `await` for `yield`, but synchronously for as
 * long as nothing it yields is a promise: a step whose store answered in memory (SQLite's admission)
 * costs no promise hop, and its result is a value rather than a promise. Once a step yields a
 * promise, the rest runs after it settles, and a promise is returned. A throw or a rejection reaches
 * the generator where it yielded, as at an `await`; what the generator throws is thrown (or, once
 * running after a promise, rejected) as an async function's would be rejected.
 */
export function runSteps<T>(steps: Steps<T>): MaybePromise<T> {
  let step = steps.next();
  while (!step.done) {
    if (isThenable(step.value)) return finishAfter(steps, step.value);
    step = steps.next(step.value);
  }
  return step.value;
}

async function finishAfter<T>(steps: Steps<T>, pending: PromiseLike<unknown>): Promise<T> {
  for (;;) {
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await pending };
    } catch (error) {
      outcome = { ok: false, error };
    }
    let step = outcome.ok ? steps.next(outcome.value) : steps.throw(outcome.error);
    for (;;) {
      if (step.done) return step.value;
      if (isThenable(step.value)) break;
      step = steps.next(step.value);
    }
    pending = step.value;
  }
}
