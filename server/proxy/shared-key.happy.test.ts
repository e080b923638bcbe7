import { afterEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

/** A LobeChat server with one shared key: its users reach lobe-quota only as the body's `user`. */
const LOBECHAT_ID = 'user_2abcDEFghiJKLmnoPQRstuVWXyz'; // LobeChat's (Clerk's) user ids: user_ and 27 characters
const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };
const ask = [{ role: 'user' as const, content: 'hi' }];

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** What the README tells an admin to do: a user for the server, and a service key for it. */
async function lobeChatServer(p: ProxyHarness) {
  expect((await p.svc.admin('POST', '/admin/users', { id: 'lobechat', name: 'LobeChat server' })).status).toBe(201);
  const created = await p.svc.admin('POST', '/admin/keys', { userId: 'lobechat', name: 'lobechat server', service: true });
  expect(created.status).toBe(201);
  // OPENAI_API_KEY=lq-… and OPENAI_PROXY_URL=http://lobe-quota/v1 on the LobeChat server.
  return p.client(((await created.json()) as { key: string }).key);
}

async function requestsByUser(p: ProxyHarness) {
  const rows = await p.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
  return rows.map((r) => [r.group, r.requests]).sort();
}

/** A LobeChat-style streamed chat for one of its users. */
async function chatAs(client: ReturnType<ProxyHarness['client']>, user: string) {
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: ask, stream: true, user });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

describe('a LobeChat server sharing one service key', () => {
  it('a user seen for the first time is created with the default budgets and charged', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const lobechat = await lobeChatServer(proxy);
    expect(await chatAs(lobechat, LOBECHAT_ID)).not.toBe('');
    // LobeHub 2.x talks to OpenAI models through the Responses API, with the same `user`.
    await lobechat.responses.create({ model: 'gpt-4o-mini', input: 'hi', user: LOBECHAT_ID });

    const user = await proxy.svc.admin('GET', `/admin/users/${LOBECHAT_ID}`);
    expect(await user.json()).toMatchObject({ id: LOBECHAT_ID, name: LOBECHAT_ID, projectId: null, externalIds: [] });
    expect(await requestsByUser(proxy)).toEqual([[LOBECHAT_ID, 2]]);
    const [row] = await proxy.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
    const quota = (await (await proxy.svc.admin('GET', `/quota/user:${LOBECHAT_ID}`)).json()) as {
      subject: unknown;
      budgets: Array<{ scope: string; usedTokens: number; limitTokens: number }>;
    };
    expect(quota.subject).toEqual({ kind: 'user', id: LOBECHAT_ID, name: LOBECHAT_ID });
    expect(quota.budgets).toMatchObject([{ scope: `user:${LOBECHAT_ID}`, limitTokens: 100_000, usedTokens: row?.totalTokens }]);
    expect(row?.totalTokens).toBeGreaterThan(0);
  });

  it('first requests of one new user at once create exactly one user, and charge it for each', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const lobechat = await lobeChatServer(proxy);
    await Promise.all(Array.from({ length: 8 }, () => chatAs(lobechat, LOBECHAT_ID)));
    expect((await proxy.svc.store.listUsers()).map((u) => u.id).sort()).toEqual(['alice', 'lobechat', LOBECHAT_ID].sort());
    expect(await requestsByUser(proxy)).toEqual([[LOBECHAT_ID, 8]]);
  });

  it('a linked external id charges the linked person, not the user created before the link; alerts name the person', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const lobechat = await lobeChatServer(proxy);
    await chatAs(lobechat, LOBECHAT_ID); // before the admin linked it: a user of its own
    const linked = await proxy.svc.admin('POST', '/admin/users/alice/external-ids', { externalId: LOBECHAT_ID });
    expect(linked.status).toBe(201);
    expect(await linked.json()).toMatchObject({ previousPayer: { id: LOBECHAT_ID }, note: expect.stringContaining('keeps its usage history') });
    // Alice (name "ALICE", project research) has a tiny alert-only budget: her next request crosses it.
    const budget = await proxy.svc.admin('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'total' }, limitTokens: 10, onLimit: 'alert-only' });
    expect(budget.status).toBe(201);

    await chatAs(lobechat, LOBECHAT_ID);
    expect(await requestsByUser(proxy)).toEqual([['alice', 1], [LOBECHAT_ID, 1]]);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ userId: 'alice', projectId: 'research' });
    const alerts = (await (await proxy.svc.admin('GET', '/admin/alerts?scope=user:alice')).json()) as { alerts: Array<{ subjectName: string }> };
    expect(alerts.alerts.length).toBeGreaterThan(0);
    expect(alerts.alerts.every((a) => a.subjectName === 'ALICE')).toBe(true);
  });

  it('the admin gives such a user a personal key (for the MCP tool), which reads the same quota', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const lobechat = await lobeChatServer(proxy);
    await chatAs(lobechat, LOBECHAT_ID);
    const created = await proxy.svc.admin('POST', '/admin/keys', { userId: LOBECHAT_ID, name: 'mcp' });
    expect(created.status).toBe(201);
    const personal = ((await created.json()) as { key: string }).key;
    const own = (await (await proxy.svc.as(personal, '/quota')).json()) as { subject: { id: string }; usage: number };
    expect(own.subject.id).toBe(LOBECHAT_ID);
    expect(own.usage).toBeGreaterThan(0);
  });
});
