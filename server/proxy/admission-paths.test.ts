import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../app.js';
import { hashSecret } from '../auth/secrets.js';
import { ManualClock } from '../clock.js';
import type { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai.js';
import { ADMIN_TOKEN, listen, memoryStore, T0, testConfig, userWithKey } from '../testing/harness.js';
import { Upstreams } from './upstreams.js';

/**
 * A store that admits in memory (SQLite) has `reserveNow`, and the proxy admits through it in one
 * synchronous stretch; a store without it (PostgreSQL) is awaited through `reserve`. The same
 * requests must get the same answers either way: admitted, routed by a fallback rule, refused by a
 * budget, refused by a rate limit, and charged alike.
 */

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** The SQLite store as a store without the synchronous entry point, as PostgreSQL is. */
function withoutReserveNow(store: SqliteStore): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'reserveNow') return undefined;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function proxyOn(fake: FakeOpenAI, asyncOnly: boolean) {
  const config = testConfig({
    upstreams: [{ name: 'fake', baseUrl: fake.baseUrl, apiKey: 'sk-upstream', models: ['*'] }],
    rateLimits: { key: { requestsPerMinute: 5 } },
  });
  const store = memoryStore([], config.alertThresholds);
  const clock = new ManualClock(T0);
  const upstreams = Upstreams.fromConfig(config);
  const app = createApp({ store: asyncOnly ? withoutReserveNow(store) : store, config, clock, adminTokenHash: hashSecret(ADMIN_TOKEN), upstreams });
  const server = await listen(app);
  closing.push(async () => {
    await server.close();
    await upstreams.close();
    await store.close();
  });
  const alice = await userWithKey(store, 'alice');
  const day = { kind: 'day', timeZone: 'UTC' };
  for (const budget of [
    { scope: 'user:alice', window: day, limitTokens: 400 },
    { scope: 'user:alice', window: day, limitTokens: 60, models: ['gpt-5*'], fallback: [{ at: 50, to: 'gpt-4o-mini' }] },
  ]) {
    const put = await app.request('/admin/budgets', { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(budget) });
    expect(put.status, await put.clone().text()).toBeLessThan(300);
  }
  return { url: server.url, store, alice };
}

const SHOWN = /^x-quota-|^x-ratelimit-|^retry-after$/;

/** What a client sees of each request, and what the ledger charged. */
async function transcript(fake: FakeOpenAI, asyncOnly: boolean) {
  const { url, store, alice } = await proxyOn(fake, asyncOnly);
  const reserveNow = vi.spyOn(store, 'reserveNow');
  const reserve = vi.spyOn(store, 'reserve');
  const asks: Array<{ model: string; max_tokens: number; text: string }> = [
    { model: 'gpt-4o-mini', max_tokens: 20, text: 'hi' },
    { model: 'gpt-5', max_tokens: 20, text: 'hello there' },
    { model: 'gpt-5', max_tokens: 20, text: 'and again' },
    { model: 'gpt-4o-mini', max_tokens: 100_000, text: 'a long answer please' },
    { model: 'gpt-4o-mini', max_tokens: 20, text: 'x '.repeat(400) },
    { model: 'gpt-4o-mini', max_tokens: 20, text: 'one more' },
    { model: 'gpt-4o-mini', max_tokens: 20, text: 'past the rate limit' },
  ];
  const answers = [];
  for (const { model, max_tokens, text } of asks) {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, max_tokens, messages: [{ role: 'user', content: text }] }),
    });
    const body = (await response.json()) as { model?: string; usage?: unknown; error?: { code?: string; message?: string } };
    const headers = Object.fromEntries([...response.headers].filter(([name]) => SHOWN.test(name)));
    answers.push({ status: response.status, headers, model: body.model ?? null, usage: body.usage ?? null, error: body.error ?? null });
  }
  const ledger = (await store.recentEntries(100)).map(({ model, inputTokens, outputTokens, costMicros, outcome, source, overrunTokens }) => ({ model, inputTokens, outputTokens, costMicros, outcome, source, overrunTokens }));
  // (The store's own `reserve` runs `reserveNow` inside: only the proxy's way in is compared.)
  return { answers, ledger, holds: await store.listHolds(), reserveNowCalls: reserveNow.mock.calls.length, reserveCalls: reserve.mock.calls.length };
}

describe('admission through Store.reserveNow and through Store.reserve', () => {
  it('gives the same answers, headers and charges', async () => {
    const fake = await startFakeOpenAI();
    closing.push(() => fake.close());
    const sync = await transcript(fake, false);
    const awaited = await transcript(fake, true);

    // Each way was taken: the SQLite store's synchronous admission, and the awaited one without it.
    expect(sync.reserveNowCalls).toBeGreaterThan(0);
    expect(sync.reserveCalls).toBe(0);
    expect(awaited.reserveCalls).toBe(sync.reserveNowCalls);

    expect(awaited.answers).toEqual(sync.answers);
    expect(awaited.ledger).toEqual(sync.ledger);
    expect(sync.holds).toEqual([]);
    expect(awaited.holds).toEqual([]);

    // The sequence reached every kind of answer it is meant to compare.
    const statuses = sync.answers.map((a) => [a.status, a.error?.code ?? a.model]);
    expect(statuses).toContainEqual([200, 'gpt-4o-mini']);
    expect(statuses).toContainEqual([200, 'gpt-5']);
    expect(sync.answers.some((a) => a.headers['x-quota-routed-from'] === 'gpt-5')).toBe(true);
    expect(statuses).toContainEqual([429, 'insufficient_quota']);
    expect(statuses).toContainEqual([429, 'rate_limit_exceeded']);
    expect(sync.answers.every((a) => a.headers['x-quota-limit'] !== undefined || a.status === 429)).toBe(true);
  });
});
