import { describe, expect, it } from 'vitest';
import { T0, testService, userWithKey } from '../testing/harness.js';

/**
 * The admin routes the web console added: renaming projects, renaming and moving users, and
 * retrying an alert's deliveries now. Their 4xx messages name the field, as the dashboard shows
 * them next to it.
 */
const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> });

describe('PATCH /admin/projects/:id', () => {
  it('renames a project; its id stays', async () => {
    const svc = testService();
    await svc.admin('POST', '/admin/projects', { id: 'research', name: 'Research' });
    expect(await json(await svc.admin('PATCH', '/admin/projects/research', { name: 'R&D' }))).toEqual({
      status: 200,
      body: { id: 'research', name: 'R&D', createdAt: new Date(T0).toISOString() },
    });
    expect(((await (await svc.admin('GET', '/admin/projects')).json()) as { projects: unknown[] }).projects).toEqual([expect.objectContaining({ id: 'research', name: 'R&D' })]);
  });

  it('answers 404 for an unknown project and 400 naming the field for a bad name', async () => {
    const svc = testService();
    await svc.admin('POST', '/admin/projects', { id: 'research' });
    expect(await json(await svc.admin('PATCH', '/admin/projects/nope', { name: 'x' }))).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'no project "nope"' } } });
    const blank = await json(await svc.admin('PATCH', '/admin/projects/research', { name: '  ' }));
    expect(blank.status).toBe(400);
    expect((blank.body.error as { message: string }).message).toMatch(/^name: /);
    const extra = await json(await svc.admin('PATCH', '/admin/projects/research', { name: 'x', id: 'other' }));
    expect(extra.status).toBe(400);
  });
});

describe('PATCH /admin/users/:id', () => {
  it('renames and moves a user; their next request is charged to the new project', async () => {
    const svc = testService();
    await svc.admin('POST', '/admin/projects', { id: 'lab', name: 'Lab' });
    const { secret } = await userWithKey(svc.store, 'alice', 'research');
    await svc.admin('PUT', '/admin/budgets', { scope: 'project:lab', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 5_000 });
    const scopesOfAlice = async () => ((await (await svc.as(secret, '/quota')).json()) as { budgets: Array<{ scope: string }> }).budgets.map((b) => b.scope);
    expect(await scopesOfAlice()).toEqual([]);

    const moved = await json(await svc.admin('PATCH', '/admin/users/alice', { name: 'Alice Liddell', projectId: 'lab' }));
    expect(moved).toEqual({ status: 200, body: { id: 'alice', name: 'Alice Liddell', projectId: 'lab', externalIds: [], createdAt: new Date(T0).toISOString() } });
    expect(await scopesOfAlice()).toEqual(['project:lab']);

    expect((await json(await svc.admin('PATCH', '/admin/users/alice', { projectId: null }))).body).toMatchObject({ name: 'Alice Liddell', projectId: null });
    expect(await scopesOfAlice()).toEqual([]);
  });

  it('names the field in its errors, and changes nothing', async () => {
    const svc = testService();
    await userWithKey(svc.store, 'alice', 'research');
    const cases: Array<[string, unknown, number, RegExp]> = [
      ['/admin/users/alice', { projectId: 'nowhere' }, 404, /^projectId: no project "nowhere"$/],
      ['/admin/users/alice', { projectId: 'bad id!' }, 400, /^projectId: /],
      ['/admin/users/alice', {}, 400, /^name: give name or projectId/],
      ['/admin/users/alice', { name: '' }, 400, /^name: /],
      ['/admin/users/bob', { name: 'Bob' }, 404, /^no user "bob"$/],
    ];
    for (const [path, body, status, message] of cases) {
      const answer = await json(await svc.admin('PATCH', path, body));
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect((answer.body.error as { message: string }).message).toMatch(message);
    }
    expect(await svc.store.getUser('alice')).toMatchObject({ name: 'ALICE', projectId: 'research' });
  });
});

describe('POST /admin/alerts/:id/retry', () => {
  it('makes the pending deliveries due now; 409 once every channel has it, 404 for an unknown alert', async () => {
    const svc = testService({ defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' }], alerts: { channelsFor: () => ['ops'], projection: false } });
    const { subject } = await userWithKey(svc.store, 'alice');
    await svc.store.reserve({ holdId: 'r1', subject, quote: { tokens: 600, micros: 0 }, now: T0, ttlMs: 60_000 });
    await svc.store.settle({ holdId: 'r1', subject, usage: { model: 'gpt-4o', inputTokens: 600, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} }, now: T0 });
    const [alert] = await svc.store.listAlerts({ limit: 1 });
    const id = alert?.alert.id as string;
    await svc.store.markDeliveryFailed(id, 'ops', 'HTTP 503', T0 + 900_000);

    expect(await json(await svc.admin('POST', `/admin/alerts/${id}/retry`))).toEqual({ status: 200, body: { id, retried: 1 } });
    const listed = (await (await svc.admin('GET', '/admin/alerts')).json()) as { alerts: Array<{ id: string; deliveries: Array<{ nextAttemptAt: string }> }> };
    expect(listed.alerts.find((a) => a.id === id)?.deliveries[0]?.nextAttemptAt).toBe(new Date(T0).toISOString());

    await svc.store.markDelivered(id, 'ops', T0);
    expect((await json(await svc.admin('POST', `/admin/alerts/${id}/retry`))).status).toBe(409);
    expect(await json(await svc.admin('POST', '/admin/alerts/alert_nope/retry'))).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'no alert "alert_nope"' } } });
  });
});
