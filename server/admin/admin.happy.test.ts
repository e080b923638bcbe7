import { describe, expect, it } from 'vitest';
import { hashSecret } from '../auth/secrets.js';
import { T0, testService, userWithKey } from '../testing/harness.js';

describe('admin API: the happy path', () => {
  it('creates a project, a user in it, a key shown once, and lists them without secrets', async () => {
    const svc = testService();
    const project = await svc.admin('POST', '/admin/projects', { id: 'research', name: 'Research' });
    expect(project.status).toBe(201);
    expect(await project.json()).toEqual({ id: 'research', name: 'Research', createdAt: new Date(T0).toISOString() });

    const user = await svc.admin('POST', '/admin/users', { id: 'alice', name: 'Alice', projectId: 'research' });
    expect(user.status).toBe(201);
    expect(await user.json()).toMatchObject({ id: 'alice', name: 'Alice', projectId: 'research' });

    const created = await svc.admin('POST', '/admin/keys', { userId: 'alice', name: 'laptop' });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string; prefix: string; service: boolean };
    expect(key.key).toMatch(/^lq-[A-Za-z0-9_-]{32}$/);
    expect(key.key.startsWith(key.prefix)).toBe(true);
    expect(key.service).toBe(false);

    const listed = (await (await svc.admin('GET', '/admin/keys?userId=alice')).json()) as { keys: Array<Record<string, unknown>> };
    expect(listed.keys).toHaveLength(1);
    const text = JSON.stringify(listed);
    expect(text).not.toContain(key.key);
    expect(text).not.toContain(hashSecret(key.key));
    expect(listed.keys[0]).toMatchObject({ id: key.id, userId: 'alice', name: 'laptop', revokedAt: null });

    expect(await (await svc.admin('GET', '/admin/users')).json()).toMatchObject({ users: [{ id: 'alice', projectId: 'research' }] });
    expect(await (await svc.admin('GET', '/admin/projects')).json()).toMatchObject({ projects: [{ id: 'research' }] });
  });

  it('revokes a key: it stops working at once', async () => {
    const svc = testService();
    await svc.admin('POST', '/admin/users', { id: 'alice' });
    const key = (await (await svc.admin('POST', '/admin/keys', { userId: 'alice' })).json()) as { id: string; key: string };
    expect((await svc.as(key.key, '/quota')).status).toBe(200);
    const revoked = await svc.admin('DELETE', `/admin/keys/${key.id}`);
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ id: key.id, revokedAt: new Date(T0).toISOString() });
    expect((await svc.as(key.key, '/quota')).status).toBe(401);
  });

  it('sets a budget (201), replaces it for the same scope and period (200), lists and deletes it', async () => {
    const svc = testService({ defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000_000, limitUsd: null, onLimit: 'reject' }] });
    await svc.admin('POST', '/admin/users', { id: 'alice' });
    const body = { scope: 'user:alice', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null };
    const first = await svc.admin('PUT', '/admin/budgets', body);
    expect(first.status).toBe(201);
    const { replaced: none, ...budget } = (await first.json()) as { id: string; replaced: unknown };
    expect(none).toBeNull();
    expect(budget).toMatchObject({
      scope: 'user:alice',
      window: { kind: 'month', timeZone: 'Asia/Shanghai' },
      limitTokens: 100_000,
      limitUsd: null,
      thresholds: [50, 80, 90, 95, 100],
      onLimit: 'reject',
      source: 'admin',
    });
    const second = await svc.admin('PUT', '/admin/budgets', { ...body, limitTokens: 200_000, limitUsd: 12.5, thresholds: [75, 100] });
    expect(second.status).toBe(200);
    expect(await second.json()).toMatchObject({ id: budget.id, limitTokens: 200_000, limitUsd: 12.5, thresholds: [75, 100], replaced: budget });

    // Another unit and another zone for the same period: the answer says what was there.
    const third = await svc.admin('PUT', '/admin/budgets', { ...body, window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd: 20 });
    expect(third.status).toBe(200);
    expect(await third.json()).toMatchObject({
      id: budget.id,
      window: { kind: 'month', timeZone: 'UTC' },
      limitTokens: null,
      limitUsd: 20,
      replaced: { id: budget.id, window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 200_000, limitUsd: 12.5, thresholds: [75, 100] },
    });

    const listed = (await (await svc.admin('GET', '/admin/budgets')).json()) as { budgets: unknown[]; defaults: unknown[] };
    expect(listed.budgets).toHaveLength(1);
    expect(listed.defaults).toEqual([
      { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000_000, limitUsd: null, onLimit: 'reject', thresholds: [50, 80, 90, 95, 100] },
    ]);
    expect((await svc.admin('DELETE', `/admin/budgets/${budget.id}`)).status).toBe(200);
    expect(((await (await svc.admin('GET', '/admin/budgets')).json()) as { budgets: unknown[] }).budgets).toEqual([]);
  });

  it('reports usage grouped by user, project, model and day, as JSON and CSV that agree', async () => {
    const svc = testService();
    await svc.admin('POST', '/admin/projects', { id: 'research' });
    await svc.admin('POST', '/admin/users', { id: 'alice', projectId: 'research' });
    await svc.admin('POST', '/admin/users', { id: 'bob' });
    const settle = (holdId: string, userId: string, projectId: string | null, model: string, at: number, input: number, output: number, costMicros: number) =>
      svc.store.settle({
        holdId,
        subject: { userId, projectId, keyId: `key_${userId}` },
        usage: { model, inputTokens: input, outputTokens: output, cachedTokens: 0, reasoningTokens: 0, costMicros, source: 'upstream', outcome: 'ok', latencyMs: 9, sessionId: null, tags: {} },
        now: at,
      });
    await settle('1', 'alice', 'research', 'gpt-4o', Date.parse('2026-11-02T10:00:00Z'), 100, 50, 1_250_000);
    await settle('2', 'alice', 'research', 'gpt-4o-mini', Date.parse('2026-11-03T10:00:00Z'), 10, 5, 3);
    await settle('3', 'bob', null, 'gpt-4o', Date.parse('2026-11-03T23:30:00Z'), 1, 1, 333_333);

    const range = 'from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z';
    const byUser = await (await svc.admin('GET', `/admin/usage?groupBy=user&${range}`)).json();
    expect(byUser).toEqual({
      groupBy: 'user',
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-12-01T00:00:00.000Z',
      rows: [
        { user: 'alice', requests: 2, inputTokens: 110, outputTokens: 55, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 165, costUsd: 1.250003, cacheHits: 0, savedTokens: 0, savedUsd: 0 },
        { user: 'bob', requests: 1, inputTokens: 1, outputTokens: 1, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 2, costUsd: 0.333333, cacheHits: 0, savedTokens: 0, savedUsd: 0 },
      ],
      totals: { requests: 3, inputTokens: 111, outputTokens: 56, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 167, costUsd: 1.583336, cacheHits: 0, savedTokens: 0, savedUsd: 0 },
    });

    const byModel = (await (await svc.admin('GET', `/admin/usage?groupBy=model&${range}`)).json()) as { rows: Array<{ model: string; requests: number }> };
    expect(byModel.rows.map((r) => [r.model, r.requests])).toEqual([['gpt-4o', 2], ['gpt-4o-mini', 1]]);

    // Days in Shanghai: bob's 23:30 UTC request falls on the 4th there.
    const byDay = (await (await svc.admin('GET', `/admin/usage?groupBy=day&tz=Asia/Shanghai&${range}`)).json()) as { rows: Array<{ day: string; requests: number }> };
    expect(byDay.rows.map((r) => [r.day, r.requests])).toEqual([['2026-11-02', 1], ['2026-11-03', 1], ['2026-11-04', 1]]);

    const csv = await svc.admin('GET', `/admin/usage?groupBy=project&format=csv&${range}`);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(await csv.text()).toBe(
      'project,requests,input_tokens,output_tokens,cached_tokens,cache_write_tokens,reasoning_tokens,total_tokens,cost_usd,cache_hits,saved_tokens,saved_usd\r\n' +
        'research,2,110,55,0,0,0,165,1.250003,0,0,0.000000\r\n' +
        ',1,1,1,0,0,0,2,0.333333,0,0,0.000000\r\n',
    );
  });

  it('lists the holds of in-flight requests', async () => {
    const svc = testService();
    await svc.store.createUser({ id: 'alice', name: 'Alice', projectId: null }, T0);
    await svc.store.reserve({ holdId: 'req-9', subject: { userId: 'alice', projectId: null, keyId: 'key_a' }, quote: { tokens: 42, micros: 1_500 }, now: T0, ttlMs: 60_000 });
    expect(await (await svc.admin('GET', '/admin/holds')).json()).toEqual({
      holds: [
        {
          id: 'req-9',
          userId: 'alice',
          projectId: null,
          keyId: 'key_a',
          tokens: 42,
          usd: 0.0015,
          outputTokens: 0,
          createdAt: new Date(T0).toISOString(),
          expiresAt: new Date(T0 + 60_000).toISOString(),
        },
      ],
    });
  });
});

describe('admin API: releasing a hold', () => {
  it('frees what the hold set aside at once and charges nothing', async () => {
    const svc = testService({ defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' }] });
    const alice = await userWithKey(svc.store, 'alice');
    await svc.store.reserve({ holdId: 'req-9', subject: alice.subject, quote: { tokens: 1_000, micros: 1_500 }, now: T0, ttlMs: 60_000 });
    const quota = async () => (await (await svc.as(alice.secret, '/quota')).json()) as { usage: number; remaining: number; status: string };
    expect(await quota()).toMatchObject({ usage: 0, remaining: 0, status: 'critical' });

    const released = await svc.admin('DELETE', '/admin/holds/req-9');
    expect(released.status).toBe(200);
    expect(await released.json()).toMatchObject({ id: 'req-9', userId: 'alice', keyId: alice.subject.keyId, tokens: 1_000, usd: 0.0015 });
    expect(await (await svc.admin('GET', '/admin/holds')).json()).toEqual({ holds: [] });
    expect(await quota()).toMatchObject({ usage: 0, remaining: 1_000, status: 'normal' });
    expect(await svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' })).toEqual([]);

    // Released once: the second time there is nothing to release.
    expect((await svc.admin('DELETE', '/admin/holds/req-9')).status).toBe(404);
  });
});

describe('admin API: alerts', () => {
  it('lists alerts with their deliveries, filtered by scope, level and state', async () => {
    const svc = testService({ defaultBudgets: [{ scope: 'user', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 100, limitUsd: null, onLimit: 'reject' }] });
    await svc.store.createUser({ id: 'alice', name: 'Alice', projectId: null }, T0);
    await svc.store.createUser({ id: 'bob', name: 'Bob', projectId: null }, T0);
    const settle = (holdId: string, userId: string, tokens: number) =>
      svc.store.settle({
        holdId,
        subject: { userId, projectId: null, keyId: `key_${userId}` },
        usage: { model: 'm', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
        now: T0,
      });
    await settle('a', 'alice', 85);
    await settle('b', 'bob', 50);
    const all = (await (await svc.admin('GET', '/admin/alerts')).json()) as { alerts: Array<{ kind: string; scope: string; threshold: number | null; windowStart: string; deliveries: unknown[] }> };
    // Alice burnt 85 % in half a day: her budget is also projected to run out before midnight.
    expect(all.alerts.map((a) => [a.scope, a.kind, a.threshold]).sort()).toEqual([
      ['user:alice', 'projected', null],
      ['user:alice', 'threshold', 50],
      ['user:alice', 'threshold', 80],
      ['user:bob', 'threshold', 50],
    ]);
    const projected = (await (await svc.admin('GET', '/admin/alerts?level=projected')).json()) as { alerts: Array<{ scope: string }> };
    expect(projected.alerts.map((a) => a.scope)).toEqual(['user:alice']);
    expect(all.alerts[0]?.windowStart).toBe('2026-11-22T00:00:00.000Z');
    expect(all.alerts.every((a) => a.deliveries.length === 0)).toBe(true);
    const bob = (await (await svc.admin('GET', '/admin/alerts?scope=user:bob')).json()) as { alerts: unknown[] };
    expect(bob.alerts).toHaveLength(1);
    const eighty = (await (await svc.admin('GET', '/admin/alerts?level=80&window=2026-11-22T00:00:00Z')).json()) as { alerts: Array<{ scope: string }> };
    expect(eighty.alerts.map((a) => a.scope)).toEqual(['user:alice']);
    expect(((await (await svc.admin('GET', '/admin/alerts?state=pending')).json()) as { alerts: unknown[] }).alerts).toEqual([]);
    expect((await svc.admin('GET', '/admin/alerts?level=soon')).status).toBe(400);

    // An upstream that charged past a request's limit: its own kind, with the numbers.
    await svc.store.settle({
      holdId: 'c',
      subject: { userId: 'bob', projectId: null, keyId: 'key_bob' },
      usage: { model: 'm', inputTokens: 0, outputTokens: 30, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {}, overrunTokens: 20 },
      now: T0,
    });
    const overrun = (await (await svc.admin('GET', '/admin/alerts?level=overrun')).json()) as { alerts: Array<Record<string, unknown>> };
    expect(overrun.alerts).toHaveLength(1);
    expect(overrun.alerts[0]).toMatchObject({
      kind: 'overrun',
      scope: 'user:bob',
      windowStart: '2026-11-22T12:00:00.000Z',
      overrun: { requestId: 'c', model: 'm', userId: 'bob', keyId: 'key_bob', allowedOutputTokens: 10, chargedOutputTokens: 30 },
    });
  });
});

describe('admin API: external ids', () => {
  const LOBECHAT_ID = 'user_2abcDEFghiJKLmnoPQRstuVWXyz';

  it('creates a user with external ids, links and unlinks more, and every view lists them', async () => {
    const svc = testService();
    const created = await svc.admin('POST', '/admin/users', { id: 'alice', name: 'Alice', externalIds: ['user_2b', 'user_2a'] });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ id: 'alice', name: 'Alice', projectId: null, externalIds: ['user_2a', 'user_2b'], createdAt: new Date(T0).toISOString() });

    const linked = await svc.admin('POST', '/admin/users/alice/external-ids', { externalId: LOBECHAT_ID });
    expect(linked.status).toBe(201);
    expect(await linked.json()).toEqual({
      user: expect.objectContaining({ id: 'alice', externalIds: ['user_2a', LOBECHAT_ID, 'user_2b'] }),
      externalId: LOBECHAT_ID,
      previousPayer: null,
    });
    // Linking it again: nothing changes, 200.
    const again = await svc.admin('POST', '/admin/users/alice/external-ids', { externalId: LOBECHAT_ID });
    expect(again.status).toBe(200);

    expect(await (await svc.admin('GET', '/admin/users/alice')).json()).toMatchObject({ externalIds: ['user_2a', LOBECHAT_ID, 'user_2b'] });
    expect(await (await svc.admin('GET', '/admin/users')).json()).toMatchObject({ users: [{ id: 'alice', externalIds: ['user_2a', LOBECHAT_ID, 'user_2b'] }] });

    const unlinked = await svc.admin('DELETE', `/admin/users/alice/external-ids/${LOBECHAT_ID}`);
    expect(unlinked.status).toBe(200);
    expect(await unlinked.json()).toEqual({ user: expect.objectContaining({ externalIds: ['user_2a', 'user_2b'] }), externalId: LOBECHAT_ID });
  });

  it('linking the id of a user created on first sight says that user keeps its history, and future requests charge the linked person', async () => {
    const svc = testService();
    await svc.store.createUser({ id: LOBECHAT_ID, name: LOBECHAT_ID, projectId: null }, T0); // as the proxy creates it
    await svc.admin('POST', '/admin/users', { id: 'alice', name: 'Alice' });
    const linked = await svc.admin('POST', '/admin/users/alice/external-ids', { externalId: LOBECHAT_ID });
    expect(linked.status).toBe(201);
    const body = (await linked.json()) as { previousPayer: unknown; note: string };
    expect(body.previousPayer).toEqual({ id: LOBECHAT_ID, name: LOBECHAT_ID });
    expect(body.note).toBe(
      `Requests naming "${LOBECHAT_ID}" charged the user "${LOBECHAT_ID}" until now and charge "alice" from now on. "${LOBECHAT_ID}" keeps its usage history and budgets; nothing is moved.`,
    );
    expect(await svc.store.getUser(LOBECHAT_ID)).not.toBeNull();
  });
});

describe('admin API: a key’s refusal style', () => {
  it('is null by default, set on creation, changed with PATCH (null: the config’s), and listed', async () => {
    const svc = testService();
    await svc.admin('POST', '/admin/users', { id: 'alice' });
    const plain = (await (await svc.admin('POST', '/admin/keys', { userId: 'alice', name: 'laptop' })).json()) as { id: string; refusalStyle: unknown };
    expect(plain.refusalStyle).toBeNull();
    const chat = await svc.admin('POST', '/admin/keys', { userId: 'alice', name: 'chat', refusalStyle: 'answer' });
    expect(chat.status).toBe(201);
    const chatKey = (await chat.json()) as { id: string; key: string; refusalStyle: unknown };
    expect(chatKey.refusalStyle).toBe('answer');

    const patched = await svc.admin('PATCH', `/admin/keys/${plain.id}`, { refusalStyle: 'error' });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ id: plain.id, name: 'laptop', refusalStyle: 'error', revokedAt: null });
    const listed = (await (await svc.admin('GET', '/admin/keys')).json()) as { keys: Array<{ id: string; refusalStyle: unknown }> };
    expect(listed.keys.map((k) => [k.id, k.refusalStyle]).sort()).toEqual([
      [chatKey.id, 'answer'],
      [plain.id, 'error'],
    ].sort());
    expect(await (await svc.admin('PATCH', `/admin/keys/${chatKey.id}`, { refusalStyle: null })).json()).toMatchObject({ refusalStyle: null });
    // What the proxy reads on the key's next request.
    expect((await svc.store.findKeyByHash(hashSecret(chatKey.key)))?.key.refusalStyle).toBeNull();
  });
});
