import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const DAY = 86_400_000;
const ask = (client: OpenAI) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });

interface QuotaBudget {
  scope: string;
  limitTokens: number;
  grantedTokens?: number;
  grants?: Array<{ tokens: number; decidedBy: string; reason: string | null; endsAt: string }>;
}

describe('POST /admin/grants', () => {
  it('lets a user at her limit go on for the rest of the window, shows the grant in /quota, and ends with the window', async () => {
    const p = (proxy = await startProxy());
    const put = await p.svc.admin('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 30 });
    const budget = (await put.json()) as { id: string };
    const client = p.client(p.alice.secret);
    await ask(client);
    await expect(ask(client)).rejects.toBeInstanceOf(OpenAI.RateLimitError);

    const created = await p.svc.admin('POST', '/admin/grants', { budgetId: budget.id, tokens: 100, reason: 'release week' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ tokens: 100, decidedBy: 'admin', reason: 'release week', endsAt: '2026-11-23T00:00:00.000Z' });
    await ask(client);

    const quota = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { limit: number; budgets: QuotaBudget[] };
    expect(quota.limit).toBe(130);
    expect(quota.budgets[0]).toMatchObject({ limitTokens: 130, grantedTokens: 100, grants: [{ tokens: 100, decidedBy: 'admin', reason: 'release week', endsAt: '2026-11-23T00:00:00Z' }] });
    expect((await (await p.svc.admin('GET', '/admin/grants?scope=user:alice&active=true')).json()) as { grants: unknown[] }).toMatchObject({ grants: [{ tokens: 100 }] });

    // The next day: the budget's own 30 tokens, and no grant.
    p.svc.clock.set(p.svc.clock.now() + DAY);
    const tomorrow = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { budgets: QuotaBudget[] };
    expect(tomorrow.budgets[0]?.limitTokens).toBe(30);
    expect(tomorrow.budgets[0]?.grants).toBeUndefined();
    expect((await (await p.svc.admin('GET', '/admin/grants?active=true')).json()) as { grants: unknown[] }).toEqual({ grants: [] });
  });

  it.each([
    [{ budgetId: 'bud_nope', tokens: 5 }, 404, 'budgetId: no budget "bud_nope"'],
    [{ budgetId: 'x' }, 400, 'tokens: a grant needs tokens or usd'],
    [{ budgetId: 'x', tokens: -5 }, 400, 'tokens: Too small'],
    [{ budgetId: 'x', tokens: 5, until: 'tomorrow' }, 400, 'until:'],
  ])('refuses %j with %i naming the problem', async (body, status, message) => {
    const p = (proxy = await startProxy());
    const response = await p.svc.admin('POST', '/admin/grants', body);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(message);
    expect(await p.svc.store.listGrants({})).toEqual([]);
  });

  it('needs the admin token', async () => {
    const p = (proxy = await startProxy());
    expect((await p.svc.as(p.alice.secret, '/admin/grants')).status).toBe(403);
  });
});
