import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, testService, userWithKey } from '../testing/harness.js';

const ADMIN_ROUTES: Array<[string, string, unknown?]> = [
  ['POST', '/admin/projects', { id: 'p' }],
  ['GET', '/admin/projects'],
  ['PATCH', '/admin/projects/p', { name: 'Renamed' }],
  ['POST', '/admin/users', { id: 'mallory' }],
  ['GET', '/admin/users'],
  ['GET', '/admin/users/alice'],
  ['PATCH', '/admin/users/alice', { name: 'Mallory' }],
  ['POST', '/admin/users/alice/external-ids', { externalId: 'user_2mallory' }],
  ['DELETE', '/admin/users/alice/external-ids/user_2x'],
  ['POST', '/admin/keys', { userId: 'alice' }],
  ['GET', '/admin/keys'],
  ['PATCH', '/admin/keys/key_x', { refusalStyle: 'answer' }],
  ['DELETE', '/admin/keys/key_x'],
  ['PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'total' }, limitTokens: 1 }],
  ['GET', '/admin/budgets'],
  ['DELETE', '/admin/budgets/bud_x'],
  ['GET', '/admin/usage'],
  ['GET', '/admin/holds'],
  ['DELETE', '/admin/holds/req_x'],
  ['POST', '/admin/alerts/alert_x/retry'],
];

async function setup() {
  const svc = testService();
  const alice = await userWithKey(svc.store, 'alice');
  const before = { users: await svc.store.listUsers(), keys: await svc.store.listKeys(), budgets: await svc.store.listBudgets() };
  const unchanged = async () =>
    expect({ users: await svc.store.listUsers(), keys: await svc.store.listKeys(), budgets: await svc.store.listBudgets() }).toEqual(before);
  return { svc, alice, unchanged };
}

const request = (method: string, body: unknown, headers: Record<string, string>): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

describe('admin API: only the admin token gets in', () => {
  it.each(ADMIN_ROUTES)('%s %s without a token → 401', async (method, path, body) => {
    const { svc, unchanged } = await setup();
    const response = await svc.app.request(path, request(method, body, {}));
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: { code: 'unauthorized', message: 'missing "Authorization: Bearer <token>" header' } });
    await unchanged();
  });

  it.each(ADMIN_ROUTES)('%s %s with a wrong token → 401', async (method, path, body) => {
    const { svc, unchanged } = await setup();
    for (const token of [`${ADMIN_TOKEN}x`, 'lq-notakeyatall', ADMIN_TOKEN.slice(0, -1)]) {
      const response = await svc.app.request(path, request(method, body, { authorization: `Bearer ${token}` }));
      expect(response.status).toBe(401);
    }
    await unchanged();
  });

  it.each(ADMIN_ROUTES)('%s %s with a user key → 403', async (method, path, body) => {
    const { svc, alice, unchanged } = await setup();
    const response = await svc.app.request(path, request(method, body, { authorization: `Bearer ${alice.secret}` }));
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    await unchanged();
  });

  it('a hold survives a release without the admin token, even by the key whose request holds it', async () => {
    const { svc, alice } = await setup();
    await svc.store.reserve({ holdId: 'req-1', subject: alice.subject, quote: { tokens: 10, micros: 0 }, now: svc.clock.now(), ttlMs: 60_000 });
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0000000000' }, { authorization: `Bearer ${alice.secret}` }];
    for (const headers of attempts) {
      expect([401, 403]).toContain((await svc.app.request('/admin/holds/req-1', { method: 'DELETE', headers })).status);
    }
    expect((await svc.store.listHolds()).map((h) => h.id)).toEqual(['req-1']);
  });

  it('authenticates before it looks at the body: a bad or oversized body without the admin token is 401 or 403, not 400 or 413', async () => {
    const { svc, alice, unchanged } = await setup();
    const bodies = ['{"id": ', JSON.stringify({ id: 'p', name: 'x'.repeat(70_000) }), JSON.stringify({ id: 'has space' })];
    for (const body of bodies) {
      const init = (headers: Record<string, string>): RequestInit => ({ method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      expect((await svc.app.request('/admin/projects', init({}))).status).toBe(401);
      expect((await svc.app.request('/admin/projects', init({ authorization: 'Bearer wrong-token-0000000000' }))).status).toBe(401);
      expect((await svc.app.request('/admin/projects', init({ authorization: `Bearer ${alice.secret}` }))).status).toBe(403);
    }
    await unchanged();
  });

  it('does not accept the token in other places than the Authorization header', async () => {
    const { svc } = await setup();
    expect((await svc.app.request(`/admin/users?token=${ADMIN_TOKEN}`)).status).toBe(401);
    expect((await svc.app.request('/admin/users', { headers: { authorization: ADMIN_TOKEN } })).status).toBe(401);
    expect((await svc.app.request('/admin/users', { headers: { cookie: `token=${ADMIN_TOKEN}` } })).status).toBe(401);
  });

  it('never stores or returns a key in clear: the database holds only its hash', async () => {
    const { svc } = await setup();
    const created = (await (await svc.admin('POST', '/admin/keys', { userId: 'alice' })).json()) as { key: string };
    const everything = JSON.stringify(await Promise.all([svc.store.listKeys(), (await svc.admin('GET', '/admin/keys')).json()]));
    expect(everything).not.toContain(created.key);
  });
});
