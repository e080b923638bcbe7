import { describe, expect, it } from 'vitest';
import { testService, type TestService } from '../testing/harness.js';

/** Everything an admin can list, to show a refused request changed nothing. */
async function snapshot(svc: TestService) {
  return {
    projects: await svc.store.listProjects(),
    users: await svc.store.listUsers(),
    keys: await svc.store.listKeys(),
    budgets: await svc.store.listBudgets(),
  };
}

async function seeded() {
  const svc = testService();
  await svc.admin('POST', '/admin/projects', { id: 'research' });
  await svc.admin('POST', '/admin/users', { id: 'alice', projectId: 'research' });
  return svc;
}

const budget = { scope: 'user:alice', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1000 };

describe('admin API: bad input is a 4xx naming the field, and changes nothing', () => {
  it.each([
    ['POST', '/admin/projects', '{"id": "x",', 400, 'body: not valid JSON'],
    ['POST', '/admin/projects', { id: 42 }, 400, 'id: Invalid input: expected string, received number'],
    ['POST', '/admin/projects', { id: 'has space' }, 400, 'id: must be 1-128 characters'],
    ['POST', '/admin/projects', { id: 'p', extra: 1 }, 400, 'Unrecognized key: "extra"'],
    ['POST', '/admin/projects', { id: 'research' }, 409, 'id: project "research" already exists'],
    ['POST', '/admin/users', { id: 'bob', projectId: 'nope' }, 404, 'projectId: no project "nope"'],
    ['POST', '/admin/users', { id: 'alice' }, 409, 'id: user "alice" already exists'],
    ['POST', '/admin/users', { id: 'user:evil' }, 400, 'id: must be'],
    ['POST', '/admin/users', [], 400, 'body: Invalid input: expected object, received array'],
    ['POST', '/admin/keys', { userId: 'ghost' }, 404, 'userId: no user "ghost"'],
    ['POST', '/admin/keys', { userId: 'alice', service: 'yes' }, 400, 'service: Invalid input: expected boolean, received string'],
    ['DELETE', '/admin/keys/key_nope', undefined, 404, 'no key "key_nope"'],
    ['PUT', '/admin/budgets', { ...budget, limitTokens: -5 }, 400, 'limitTokens: Too small: expected number to be >=0'],
    ['PUT', '/admin/budgets', { ...budget, limitTokens: 1.5 }, 400, 'limitTokens: Invalid input: expected int, received number'],
    ['PUT', '/admin/budgets', { ...budget, limitTokens: '1000' }, 400, 'limitTokens: Invalid input: expected number, received string'],
    ['PUT', '/admin/budgets', { ...budget, limitUsd: -1 }, 400, 'limitUsd: Too small'],
    ['PUT', '/admin/budgets', { ...budget, limitTokens: null }, 400, 'limitTokens: a budget needs limitTokens or limitUsd (or both)'],
    ['PUT', '/admin/budgets', { ...budget, window: { kind: 'month', timeZone: 'Mars/Olympus' } }, 400, 'window.timeZone: unknown IANA time zone "Mars/Olympus"'],
    ['PUT', '/admin/budgets', { ...budget, window: { kind: 'fortnight' } }, 400, 'window.kind: Invalid discriminator value'],
    ['PUT', '/admin/budgets', { ...budget, window: { kind: 'rolling', hours: 0 } }, 400, 'window.hours: Too small'],
    ['PUT', '/admin/budgets', { ...budget, scope: 'team:alice' }, 400, 'scope: unknown scope "team:alice"'],
    ['PUT', '/admin/budgets', { ...budget, scope: 'user:bob' }, 404, 'scope: no user bob'],
    ['PUT', '/admin/budgets', { ...budget, thresholds: [80, 50] }, 400, 'thresholds: must be strictly increasing percentages'],
    ['PUT', '/admin/budgets', { ...budget, onLimit: 'downgrade' }, 400, 'downgradeTo: onLimit "downgrade" needs the model to downgrade to'],
    ['PUT', '/admin/budgets', { ...budget, onLimit: 'explode' }, 400, 'onLimit: Invalid option'],
    ['DELETE', '/admin/budgets/bud_nope', undefined, 404, 'no budget "bud_nope"'],
    ['DELETE', '/admin/holds/req_nope', undefined, 404, 'no hold "req_nope"'],
    ['GET', '/admin/usage?groupBy=planet', undefined, 400, 'groupBy: Invalid option: expected one of "user"|"project"|"key"|"model"|"day"'],
    ['GET', '/admin/usage?groupBy=user,planet', undefined, 400, 'groupBy: Invalid option: expected one of "user"|"project"|"key"|"model"|"day", or two of them comma-separated (got "planet")'],
    ['GET', '/admin/usage?groupBy=user,model,day', undefined, 400, 'groupBy: at most two dimensions, comma-separated (got 3)'],
    ['GET', '/admin/usage?groupBy=model,model', undefined, 400, 'groupBy: "model" given twice'],
    ['GET', '/admin/usage?groupBy=', undefined, 400, 'groupBy: Invalid option'],
    ['GET', '/admin/usage?groupBy=model,day&from=1970-01-01T00:00:00Z', undefined, 400, 'from: a report by day covers at most 3660 days'],
    ['GET', '/admin/usage?from=yesterday', undefined, 400, 'from: Invalid ISO datetime'],
    ['GET', '/admin/usage?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z', undefined, 400, 'from: must be before to'],
    ['GET', '/admin/usage?tz=Nowhere/City', undefined, 400, 'tz: unknown IANA time zone'],
    ['GET', '/admin/usage?groupBy=day&from=1970-01-01T00:00:00Z', undefined, 400, 'from: a report by day covers at most 3660 days'],
    ['GET', '/admin/nothing-here', undefined, 404, 'no route for GET /admin/nothing-here'],
  ])('%s %s %j → %i', async (method, path, body, status, message) => {
    const svc = await seeded();
    const before = await snapshot(svc);
    const response =
      typeof body === 'string'
        ? await svc.as('test-admin-token-0123456789', path, { method, body, headers: { 'content-type': 'application/json' } })
        : await svc.admin(method, path, body);
    expect(response.status).toBe(status);
    const json = (await response.json()) as { error: { code: string; message: string } };
    expect(json.error.message).toContain(message);
    expect(await snapshot(svc)).toEqual(before);
  });

  it('lists every problem of a body at once', async () => {
    const svc = await seeded();
    const response = await svc.admin('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'day', timeZone: 'X/Y' }, limitTokens: -1, limitUsd: 'lots' });
    const { error } = (await response.json()) as { error: { message: string } };
    expect(error.message).toMatch(/window\.timeZone: .*; limitTokens: .*; limitUsd: /);
  });

  it('refuses a body over 64 KiB with 413', async () => {
    const svc = await seeded();
    const response = await svc.admin('POST', '/admin/projects', { id: 'big', name: 'x'.repeat(70_000) });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: { code: 'payload_too_large', message: 'body: larger than 65536 bytes' } });
  });
});

describe('admin API: external ids and refusal styles, refused', () => {
  async function linked() {
    const svc = await seeded();
    await svc.admin('POST', '/admin/users', { id: 'bob', externalIds: ['user_2bob'] });
    const key = (await (await svc.admin('POST', '/admin/keys', { userId: 'alice' })).json()) as { id: string };
    return { svc, keyId: key.id };
  }

  it.each([
    ['POST', '/admin/users', { id: 'carol', externalIds: ['user_2bob'] }, 409, 'externalIds: "user_2bob" is linked to user "bob" already'],
    ['POST', '/admin/users', { id: 'carol', externalIds: ['user 2'] }, 400, 'externalIds.0: must be 1-128 characters'],
    ['POST', '/admin/users', { id: 'carol', externalIds: 'user_2c' }, 400, 'externalIds: Invalid input: expected array, received string'],
    ['POST', '/admin/users/alice/external-ids', { externalId: 'user_2bob' }, 409, 'externalId: "user_2bob" is linked to user "bob"; unlink it there first (DELETE /admin/users/bob/external-ids/user_2bob)'],
    ['POST', '/admin/users/ghost/external-ids', { externalId: 'user_2g' }, 404, 'no user "ghost"'],
    ['POST', '/admin/users/alice/external-ids', { externalId: 'u'.repeat(300) }, 400, 'externalId: must be 1-128 characters'],
    ['POST', '/admin/users/alice/external-ids', { externalId: 'user:2' }, 400, 'externalId: must be'],
    ['POST', '/admin/users/alice/external-ids', {}, 400, 'externalId: Invalid input: expected string, received undefined'],
    ['DELETE', '/admin/users/alice/external-ids/user_2bob', undefined, 409, 'externalId: "user_2bob" is linked to user "bob"'],
    ['DELETE', '/admin/users/alice/external-ids/user_2nobody', undefined, 404, 'externalId: "user_2nobody" is not linked to any user'],
    ['DELETE', '/admin/users/ghost/external-ids/user_2bob', undefined, 404, 'no user "ghost"'],
    ['POST', '/admin/keys', { userId: 'alice', refusalStyle: 'shout' }, 400, 'refusalStyle: Invalid option: expected one of "error"|"answer"'],
    ['PATCH', '/admin/keys/key_nope', { refusalStyle: 'answer' }, 404, 'no key "key_nope"'],
    ['PATCH', '/admin/keys/{key}', { refusalStyle: 'shout' }, 400, 'refusalStyle: Invalid option'],
    ['PATCH', '/admin/keys/{key}', {}, 400, 'refusalStyle: Invalid option'],
    ['PATCH', '/admin/keys/{key}', { refusalStyle: 'answer', service: true }, 400, 'Unrecognized key: "service"'],
  ])('%s %s %j → %i', async (method, path, body, status, message) => {
    const { svc, keyId } = await linked();
    const before = await snapshot(svc);
    const response = await svc.admin(method, path.replace('{key}', keyId), body);
    expect(response.status).toBe(status);
    const json = (await response.json()) as { error: { code: string; message: string } };
    expect(json.error.message).toContain(message);
    expect(await snapshot(svc)).toEqual(before);
  });
});
