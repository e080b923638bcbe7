import { afterEach, describe, expect, it } from 'vitest';
import { testConfig, testService, userWithKey, type TestService } from '../testing/harness.js';

/** POST /quota/requests and /admin/requests without a port: input errors, admin decisions and the policy. */

let svc: TestService;
afterEach(async () => svc.store.close());

async function setup(config: Parameters<typeof testService>[0] = {}) {
  svc = testService(config);
  const alice = await userWithKey(svc.store, 'alice', 'research');
  await userWithKey(svc.store, 'bob', 'ops');
  expect((await svc.admin('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 100_000 })).status).toBe(201);
  expect((await svc.admin('PUT', '/admin/budgets', { scope: 'user:bob', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 100 })).status).toBe(201);
  // 60,000 tokens in the first 12 h of alice's day (T0 is noon UTC).
  await svc.store.settle({
    holdId: 'h1',
    subject: alice.subject,
    usage: { model: 'gpt-4o', inputTokens: 60_000, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
    now: svc.clock.now(),
  });
  const post = (body: unknown, key = alice.secret) =>
    svc.as(key, '/quota/requests', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { alice, post };
}

describe('POST /quota/requests', () => {
  it('asks by default for the rest of the window at the burn rate, once per budget; an admin approves a changed amount', async () => {
    const { post } = await setup();
    const created = await post({ reason: 'demo day' });
    expect(created.status).toBe(201);
    // 60,000 used in 12 h elapsed, 12 h remaining: 60,000 more.
    const request = (await created.json()) as { id: string; amountTokens: number; unit: string; state: string };
    expect(request).toMatchObject({ amountTokens: 60_000, unit: 'tokens', state: 'open', scope: 'user:alice' });
    expect((await post({ amount: 10 })).status).toBe(409);

    expect(((await (await svc.admin('GET', '/admin/requests?state=open')).json()) as { requests: Array<{ id: string }> }).requests.map((r) => r.id)).toEqual([request.id]);
    const approved = await svc.admin('POST', `/admin/requests/${request.id}/approve`, { amount: 25_000 });
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ state: 'approved', decidedBy: 'admin', grantedTokens: 25_000, grant: { tokens: 25_000, decidedBy: 'admin', requestId: request.id } });
    expect((await svc.admin('POST', `/admin/requests/${request.id}/deny`)).status).toBe(409);
    expect((await svc.admin('GET', '/admin/requests?state=open')).status).toBe(200);
    expect((await svc.admin('GET', '/admin/requests?state=maybe')).status).toBe(400);
    expect((await svc.admin('POST', '/admin/requests/req_nope/deny')).status).toBe(404);
  });

  it.each([
    [{ amount: -5 }, 400, 'amount'],
    [{ amount: 1.5 }, 400, 'whole number of tokens'],
    [{ amount: 'lots' }, 400, 'amount'],
    [{ extra: true }, 400, 'extra'],
    [{ scope: 'user:bob' }, 403, 'binds your own requests'],
    [{ scope: 'project:research' }, 404, 'no budget on project:research'],
    [{ scope: 'nonsense' }, 400, 'scope'],
  ])('refuses %j with %i', async (body, status, message) => {
    const { post } = await setup();
    const response = await post(body);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(message);
    expect(await svc.store.listQuotaRequests({})).toEqual([]);
  });

  it('needs a user key, and a budget to ask on', async () => {
    const { post } = await setup();
    expect((await post({}, 'test-admin-token-0123456789')).status).toBe(403);
    const carol = await userWithKey(svc.store, 'carol');
    expect((await post({}, carol.secret)).status).toBe(404);
  });

  it('approves at once what the policy allows, once per window', async () => {
    const { post } = await setup({ config: { requests: { ...testConfig().requests, autoApprove: { maxPercent: 20, perWindow: 1 } } } });
    const first = await post({ amount: 20_000 });
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ state: 'approved', decidedBy: 'policy', grantedTokens: 20_000, grant: { tokens: 20_000 } });
    // The second in the same window waits for an admin; so does one above 20 %.
    expect(await (await post({ amount: 1_000 })).json()).toMatchObject({ state: 'open', decidedBy: null });
    svc.clock.set(svc.clock.now() + 86_400_000);
    await svc.admin('POST', `/admin/requests/${(await svc.store.listQuotaRequests({ state: 'open' }))[0]?.id}/deny`);
    expect(await (await post({ amount: 20_001 })).json()).toMatchObject({ state: 'open' });
  });

  it("leaves a request on a budget others share (a project's, the global one) to an admin, whatever the policy", async () => {
    const { post } = await setup({ config: { requests: { ...testConfig().requests, autoApprove: { maxPercent: 20, perWindow: 1 } } } });
    expect((await svc.admin('PUT', '/admin/budgets', { scope: 'project:research', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 1_000_000 })).status).toBe(201);
    expect(await (await post({ amount: 1_000, scope: 'project:research' })).json()).toMatchObject({ state: 'open', decidedBy: null });
  });

  it('refuses a dollar amount past what a budget can hold (it would not be an exact integer of micro-dollars)', async () => {
    const { post, alice } = await setup();
    expect((await svc.admin('PUT', '/admin/budgets', { scope: `key:${alice.subject.keyId}`, window: { kind: 'day', timeZone: 'UTC' }, limitUsd: 5 })).status).toBe(201);
    const response = await post({ amount: 1e10, scope: `key:${alice.subject.keyId}` });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('at most 1,000,000,000');
    expect(await svc.store.listQuotaRequests({})).toEqual([]);
  });

  it('does not approve a request made in a window that has reset since: its need was that window\'s', async () => {
    const { post } = await setup();
    const { id } = (await (await post({ amount: 5_000 })).json()) as { id: string };
    svc.clock.set(svc.clock.now() + 86_400_000);
    const approved = await svc.admin('POST', `/admin/requests/${id}/approve`, {});
    expect(approved.status).toBe(409);
    expect(((await approved.json()) as { error: { message: string } }).error.message).toContain('earlier window');
    expect((await svc.admin('POST', `/admin/requests/${id}/deny`)).status).toBe(200);
  });
});
