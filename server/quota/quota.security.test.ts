import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { testService, userWithKey } from '../testing/harness.js';

const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1000, limitUsd: null, onLimit: 'reject' };

async function twoUsers() {
  const svc = testService({ defaultBudgets: [monthly] });
  const alice = await userWithKey(svc.store, 'alice');
  const bob = await userWithKey(svc.store, 'bob');
  await svc.store.settle({
    holdId: 'bob-1',
    subject: bob.subject,
    usage: { model: 'm', inputTokens: 777, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
    now: svc.clock.now(),
  });
  return { svc, alice, bob };
}

describe('GET /quota: nobody reads another user’s usage', () => {
  it('refuses a request without a token, or with an unknown one', async () => {
    const { svc } = await twoUsers();
    expect((await svc.app.request('/quota')).status).toBe(401);
    expect((await svc.as('lq-forged-key-000000000000000000000000', '/quota')).status).toBe(401);
    expect((await svc.as('Bearer', '/quota')).status).toBe(401);
  });

  it('a user key asking for another user, or another user’s key, gets 403 — whether that user exists or not', async () => {
    const { svc, alice, bob } = await twoUsers();
    for (const path of ['/quota/user:bob', '/quota/bob', `/quota/key:${bob.subject.keyId}`, '/quota/user:nobody', '/quota/global', '/quota/project:x']) {
      const response = await svc.as(alice.secret, path);
      expect(response.status, path).toBe(403);
      expect(await response.text()).not.toContain('777');
    }
  });

  it('a user key reads itself by name too, and its own answer never carries another user’s numbers', async () => {
    const { svc, alice } = await twoUsers();
    const own = await svc.as(alice.secret, '/quota/user:alice');
    expect(own.status).toBe(200);
    const mine = await (await svc.as(alice.secret, '/quota')).text();
    expect(mine).not.toContain('bob');
    expect(mine).not.toContain('777');
  });

  it('a revoked key reads nothing', async () => {
    const { svc, alice } = await twoUsers();
    await svc.store.revokeKey(alice.subject.keyId, svc.clock.now());
    expect((await svc.as(alice.secret, '/quota')).status).toBe(401);
  });

  it('a malformed subject is a 400 for the admin, an unknown one a 404', async () => {
    const { svc } = await twoUsers();
    expect((await svc.admin('GET', '/quota/team:x')).status).toBe(400);
    expect((await svc.admin('GET', '/quota/user:nobody')).status).toBe(404);
  });
});
