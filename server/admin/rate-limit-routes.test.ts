import { describe, expect, it } from 'vitest';
import { T0, testService, userWithKey } from '../testing/harness.js';

const seeded = async () => {
  const svc = testService({ config: { rateLimits: { user: { requestsPerMinute: 60, maxConcurrent: 4 } } } });
  await userWithKey(svc.store, 'alice', 'research');
  return svc;
};

const json = async (response: Response) => (await response.json()) as Record<string, unknown>;

describe('/admin/rate-limits', () => {
  it('sets a subject’s limits over the config’s, lists them beside the config’s, replaces and deletes them', async () => {
    const svc = await seeded();
    const created = await svc.admin('PUT', '/admin/rate-limits', { scope: 'user:alice', requestsPerDay: 500, maxConcurrent: null });
    expect(created.status).toBe(201);
    expect(await json(created)).toEqual({
      scope: 'user:alice',
      limits: { requestsPerDay: 500, maxConcurrent: null },
      // The config's per-minute limit stays; its maxConcurrent is lifted for alice.
      effective: { requestsPerMinute: 60, requestsPerDay: 500 },
      updatedAt: new Date(T0).toISOString(),
      replaced: null,
    });
    expect((await svc.admin('PUT', '/admin/rate-limits', { scope: 'project:research', tokensPerMinute: 50_000 })).status).toBe(201);

    svc.clock.advance(1_000);
    const replaced = await svc.admin('PUT', '/admin/rate-limits', { scope: 'user:alice', requestsPerMinute: 5 });
    expect(replaced.status).toBe(200);
    expect(await json(replaced)).toMatchObject({ limits: { requestsPerMinute: 5 }, effective: { requestsPerMinute: 5, maxConcurrent: 4 }, replaced: { limits: { requestsPerDay: 500, maxConcurrent: null } } });

    expect(await json(await svc.admin('GET', '/admin/rate-limits'))).toEqual({
      rateLimits: [
        { scope: 'project:research', limits: { tokensPerMinute: 50_000 }, effective: { tokensPerMinute: 50_000 }, updatedAt: new Date(T0).toISOString() },
        { scope: 'user:alice', limits: { requestsPerMinute: 5 }, effective: { requestsPerMinute: 5, maxConcurrent: 4 }, updatedAt: new Date(T0 + 1_000).toISOString() },
      ],
      defaults: { user: { requestsPerMinute: 60, maxConcurrent: 4 } },
    });

    const deleted = await svc.admin('DELETE', '/admin/rate-limits/user:alice');
    expect(deleted.status).toBe(200);
    expect(await json(deleted)).toMatchObject({ scope: 'user:alice', limits: { requestsPerMinute: 5 } });
    expect((await json(await svc.admin('GET', '/admin/rate-limits'))).rateLimits).toHaveLength(1);
  });

  it.each<[string, string, unknown, number, string]>([
    ['PUT', '/admin/rate-limits', { scope: 'user:alice', requestsPerMinute: 0 }, 400, 'requestsPerMinute: Too small: expected number to be >=1'],
    ['PUT', '/admin/rate-limits', { scope: 'user:alice', requestsPerHour: 2.5 }, 400, 'requestsPerHour: Invalid input: expected int, received number'],
    ['PUT', '/admin/rate-limits', { scope: 'user:alice', maxConcurrent: '2' }, 400, 'maxConcurrent: Invalid input: expected number, received string'],
    ['PUT', '/admin/rate-limits', { scope: 'user:alice', requestsPerWeek: 5 }, 400, 'Unrecognized key: "requestsPerWeek"'],
    ['PUT', '/admin/rate-limits', { scope: 'user:alice' }, 400, 'body: give at least one of requestsPerMinute, requestsPerHour, requestsPerDay, tokensPerMinute, maxConcurrent'],
    ['PUT', '/admin/rate-limits', { scope: 'global', requestsPerMinute: 5 }, 400, 'scope: unknown scope "global": use "key:ID", "user:ID" or "project:ID"'],
    ['PUT', '/admin/rate-limits', { requestsPerMinute: 5 }, 400, 'scope: Invalid input: expected string, received undefined'],
    ['PUT', '/admin/rate-limits', { scope: 'user:bob', requestsPerMinute: 5 }, 404, 'scope: no user "bob" (create it first)'],
    ['DELETE', '/admin/rate-limits/user:alice', undefined, 404, 'no rate limits set for user:alice'],
    ['DELETE', '/admin/rate-limits/team:alice', undefined, 400, 'scope: unknown scope "team:alice"'],
  ])('%s %s %j → %i', async (method, path, body, status, message) => {
    const svc = await seeded();
    const response = await svc.admin(method, path, body);
    expect(response.status).toBe(status);
    expect(((await json(response)).error as { message: string }).message).toContain(message);
    expect(await svc.store.listRateLimits()).toEqual([]);
  });

  it('needs the admin token', async () => {
    const svc = await seeded();
    expect((await svc.as('wrong-token', '/admin/rate-limits')).status).toBe(401);
  });
});
