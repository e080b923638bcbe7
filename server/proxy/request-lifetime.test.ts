import { EventEmitter } from 'node:events';
import type { Context } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../clock.js';
import { Metrics } from '../metrics/metrics.js';
import { memoryStore, T0 } from '../testing/harness.js';
import { Meter } from './meter.js';
import { createPriceBook } from './pricing.js';
import { afterAdmission } from './request-lifetime.js';

const TTL_MS = 30_000;
const subject = { userId: 'alice', projectId: null, keyId: 'key_a' };

/** A real Meter on a real (in-memory) store: one admitted request holding 100 prompt tokens. */
async function admitted(streaming: boolean) {
  const store = memoryStore([{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 10_000, limitUsd: null, onLimit: 'reject' }]);
  const clock = new ManualClock(T0);
  const result = await Meter.admit(
    { store, clock, metrics: new Metrics({ store, clock, prices: createPriceBook() }), holdTtlMs: TTL_MS, leaseTokens: 50 },
    { holdId: 'req-1', subject, model: 'gpt-4o-mini', promptTokens: 100, price: null, wantOutput: 500, streaming, sessionId: null, tags: {} },
  );
  if (!result.ok) throw new Error('not admitted');
  return { store, clock, meter: result.meter };
}

/** A Context as @hono/node-server gives one: its `env.outgoing` is the socket's response. */
const nodeContext = (outgoing: EventEmitter) => ({ env: { outgoing } }) as unknown as Context;

afterEach(() => {
  vi.useRealTimers();
});

describe('afterAdmission: a hold never outlives its request', () => {
  it('a throw after admission releases the hold of a request that delivered nothing, and the error goes on', async () => {
    const { store, meter } = await admitted(false);
    expect(await store.listHolds()).toHaveLength(1);
    const failure = afterAdmission(nodeContext(new EventEmitter()), meter, async () => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    await expect(failure).rejects.toThrow(RangeError);
    expect(await store.listHolds()).toEqual([]);
    expect(await store.recentEntries(10)).toEqual([]);
  });

  it('a throw after output reached the client settles what was counted (prompt and output), once', async () => {
    const { store, meter } = await admitted(true);
    const failure = afterAdmission(nodeContext(new EventEmitter()), meter, async () => {
      expect(await meter.addOutput(30)).toBe(true);
      throw new Error('a bug of ours, mid-stream');
    });
    await expect(failure).rejects.toThrow('a bug of ours');
    expect(await store.listHolds()).toEqual([]);
    const entries = await store.recentEntries(10);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ inputTokens: 100, outputTokens: 30, source: 'estimated', outcome: 'upstream_error' });
  });

  it('renewal stops when the connection closes, so a request stuck forever lets its hold expire', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { store, clock, meter } = await admitted(false);
    const renew = vi.spyOn(store, 'renew');
    const outgoing = new EventEmitter();
    // A request that never ends (a bug, or an upstream that never answers and never times out).
    void afterAdmission(nodeContext(outgoing), meter, () => new Promise<Response>(() => undefined));

    vi.advanceTimersByTime(TTL_MS);
    const renewedWhileConnected = renew.mock.calls.length;
    expect(renewedWhileConnected).toBeGreaterThan(0);

    outgoing.emit('close');
    vi.advanceTimersByTime(10 * TTL_MS);
    expect(renew.mock.calls.length).toBe(renewedWhileConnected);

    // The last renewal set the expiry at most one TTL past the instant it ran.
    clock.advance(2 * TTL_MS);
    expect(await store.expireHolds(clock.now())).toBe(1);
    expect(await store.listHolds()).toEqual([]);
  });
});
