import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const ask = [{ role: 'user' as const, content: 'hello' }];

const userBudget = (over: Partial<DefaultBudget>): DefaultBudget => ({
  scope: 'user',
  window: { kind: 'month', timeZone: 'UTC' },
  limitTokens: null,
  limitUsd: null,
  onLimit: 'reject',
  ...over,
});

describe('alerts through the proxy', () => {
  it('one request whose usage crosses 50 % and 80 % fires both, once', async () => {
    proxy = await startProxy({ defaultBudgets: [userBudget({ limitTokens: 1_000 })] });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5, usage: { prompt_tokens: 845, completion_tokens: 5 } });
    const client = proxy.client(proxy.alice.secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask });
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 5, usage: { prompt_tokens: 10, completion_tokens: 5 } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask });
    const alerts = (await proxy.svc.store.listAlerts({ limit: 10 })).filter((a) => a.alert.kind === 'threshold');
    expect(alerts.map((a) => [a.alert.scope, a.alert.threshold, a.alert.usage]).sort()).toEqual([
      ['user:alice', 50, 850],
      ['user:alice', 80, 850],
    ]);
  });
});

describe('at the limit', () => {
  it('downgrade: the request goes to the cheaper model, says so in a header, and still counts up to the ceiling', async () => {
    // $0.001 a month; past it, gpt-4o requests go to gpt-4o-mini until 120 % of the limit.
    proxy = await startProxy({ defaultBudgets: [userBudget({ limitUsd: 0.001, onLimit: 'downgrade', downgradeTo: 'gpt-4o-mini' })] });
    const client = proxy.client(proxy.alice.secret);
    // gpt-4o: $2.50 / 1M input, $10 / 1M output → 100 + 50 tokens cost $0.00075.
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 50, usage: { prompt_tokens: 100, completion_tokens: 50 } });
    const first = await client.chat.completions.create({ model: 'gpt-4o', messages: ask, max_tokens: 50 }).withResponse();
    expect(first.response.headers.get('x-quota-downgraded-from')).toBeNull();
    expect(proxy.fake.requests[0]?.body).toMatchObject({ model: 'gpt-4o' });

    // The next gpt-4o request would not fit the $0.001: it is served by gpt-4o-mini instead.
    proxy.fake.enqueue({ kind: 'reply', outputTokens: 50, usage: { prompt_tokens: 100, completion_tokens: 50 } });
    const second = await client.chat.completions.create({ model: 'gpt-4o', messages: ask, max_tokens: 50 }).withResponse();
    expect(second.response.headers.get('x-quota-downgraded-from')).toBe('gpt-4o');
    expect(proxy.fake.requests[1]?.body).toMatchObject({ model: 'gpt-4o-mini' });
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ model: 'gpt-4o-mini', inputTokens: 100, outputTokens: 50 });
    // gpt-4o-mini: 100 × $0.15 + 50 × $0.60 per 1M = $0.000045, counted against the budget.
    const quota = (await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { budgets: Array<{ usedUsd: number }> };
    expect(quota.budgets[0]?.usedUsd).toBeCloseTo(0.00075 + 0.000045, 9);

    // Downgraded requests are clamped to what is left under the hard ceiling ($0.0012), then refused.
    let refused: InstanceType<typeof OpenAI.APIError> | undefined;
    for (let i = 0; i < 10 && !refused; i++) {
      proxy.fake.enqueue({ kind: 'reply', outputTokens: 2_000 });
      refused = (await client.chat.completions.create({ model: 'gpt-4o', messages: ask, max_tokens: 4_000 }).then(
        () => undefined,
        (e: unknown) => e,
      )) as InstanceType<typeof OpenAI.APIError> | undefined;
    }
    expect(refused?.status).toBe(429);
    expect(refused?.code).toBe('insufficient_quota');
    expect(proxy.fake.requests.slice(2).every((r) => (r.body as { model: string }).model === 'gpt-4o-mini')).toBe(true);
    const after = (await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { budgets: Array<{ usedUsd: number }> };
    expect(after.budgets[0]?.usedUsd).toBeGreaterThan(0.001);
    expect(after.budgets[0]?.usedUsd).toBeLessThanOrEqual(0.0012);
  });

  it('alert-only: traffic continues past the limit, /quota says exceeded, and the alerts fire', async () => {
    proxy = await startProxy({ defaultBudgets: [userBudget({ limitTokens: 100, onLimit: 'alert-only' })] });
    const client = proxy.client(proxy.alice.secret);
    for (let i = 0; i < 3; i++) {
      proxy.fake.enqueue({ kind: 'reply', outputTokens: 50, usage: { prompt_tokens: 30, completion_tokens: 50 } });
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask });
    }
    expect(proxy.fake.requests).toHaveLength(3);
    const quota = (await (await proxy.svc.as(proxy.alice.secret, '/quota')).json()) as { status: string; usage: number; percentage: number };
    expect(quota).toMatchObject({ status: 'exceeded', usage: 240, percentage: 240 });
    const thresholds = (await proxy.svc.store.listAlerts({ limit: 10 })).filter((a) => a.alert.kind === 'threshold').map((a) => a.alert.threshold);
    expect(thresholds.sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([50, 80, 90, 95, 100]);
  });
});
