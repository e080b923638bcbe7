import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { UsersConfig } from '../config/schema.js';
import { storeKinds } from '../store/testing/store-kinds.js';
import type { KeyIdentity, Store } from '../store/types.js';
import { T0 } from '../testing/harness.js';
import { payerOf } from './identity.js';
import { OpenAIError } from './openai-error.js';

/** Who pays, on both stores: a throwaway app that answers with payerOf's subject or its error. */
const kinds = storeKinds();

const LOBECHAT_ID = 'user_2abcDEFghiJKLmnoPQRstuVWXyz'; // LobeChat's (Clerk's) ids: user_ and 27 characters

async function setUp(store: Store, users: Partial<UsersConfig> = {}) {
  await store.createUser({ id: 'lobechat', name: 'LobeChat server', projectId: null }, T0);
  const service: KeyIdentity = {
    key: { id: 'key_service', userId: 'lobechat', name: 'server', prefix: 'lq-s', service: true, refusalStyle: null, createdAt: T0, revokedAt: null },
    user: { id: 'lobechat', name: 'LobeChat server', projectId: null, createdAt: T0 },
  };
  const services = { store, clock: new ManualClock(T0), config: { users: { autoCreate: true, autoCreateProjectId: null, ...users } } };
  const app = new Hono().post('/', async (c) => {
    const body = (await c.req.json()) as { user?: unknown };
    try {
      return c.json(await payerOf(c, services, service, body.user));
    } catch (error) {
      if (!(error instanceof OpenAIError)) throw error;
      return c.json(error.body(), error.status);
    }
  });
  const pay = (body: object, headers: Record<string, string> = {}) =>
    Promise.resolve(app.request('/', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } }));
  return { pay };
}

describe.each(kinds)('$name store: who a service key names', ({ open }) => {
  it('creates a user on first sight, named by its id, in no project; the second request finds it', async () => {
    const store = await open();
    const { pay } = await setUp(store);
    expect(await (await pay({ user: LOBECHAT_ID })).json()).toEqual({ userId: LOBECHAT_ID, projectId: null, keyId: 'key_service' });
    expect(await store.getUser(LOBECHAT_ID)).toEqual({ id: LOBECHAT_ID, name: LOBECHAT_ID, projectId: null, createdAt: T0, externalIds: [] });
    expect(await (await pay({}, { 'X-Quota-User': LOBECHAT_ID })).json()).toMatchObject({ userId: LOBECHAT_ID });
    expect((await store.listUsers()).map((u) => u.id)).toEqual(['lobechat', LOBECHAT_ID]);
  });

  it('ten first requests at once create one user, and all of them are charged to it', async () => {
    const store = await open();
    const { pay } = await setUp(store);
    const createUser = store.createUser.bind(store);
    let creations = 0;
    store.createUser = (user, now) => {
      creations++;
      return createUser(user, now);
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => pay({ user: LOBECHAT_ID })));
    expect(creations, 'several requests raced to create the user').toBeGreaterThan(1);
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 10 }, () => 200));
    for (const a of answers) expect(await a.json()).toMatchObject({ userId: LOBECHAT_ID });
    expect((await store.listUsers()).map((u) => u.id)).toEqual(['lobechat', LOBECHAT_ID]);
  });

  it('charges the person an external id is linked to, before a user that has the id itself', async () => {
    const store = await open();
    const { pay } = await setUp(store);
    await pay({ user: LOBECHAT_ID }); // created on first sight
    await store.createProject({ id: 'research', name: 'Research' }, T0);
    await store.createUser({ id: 'alice', name: 'Alice', projectId: 'research', externalIds: [LOBECHAT_ID] }, T0);
    expect(await (await pay({ user: LOBECHAT_ID })).json()).toEqual({ userId: 'alice', projectId: 'research', keyId: 'key_service' });
    expect(await (await pay({}, { 'X-Quota-User': LOBECHAT_ID })).json()).toMatchObject({ userId: 'alice' });
    expect(await (await pay({ user: 'alice' })).json()).toMatchObject({ userId: 'alice' });
  });

  it('puts users created on first sight into users.autoCreateProjectId, and says so when that project is missing', async () => {
    const store = await open();
    const { pay } = await setUp(store, { autoCreateProjectId: 'lobechat-users' });
    const refused = await pay({ user: LOBECHAT_ID });
    expect(refused.status).toBe(500);
    expect(await refused.json()).toMatchObject({ error: { code: 'user_not_created', message: expect.stringContaining('users.autoCreateProjectId') } });
    expect(await store.getUser(LOBECHAT_ID)).toBeNull();
    await store.createProject({ id: 'lobechat-users', name: 'LobeChat' }, T0);
    expect(await (await pay({ user: LOBECHAT_ID })).json()).toMatchObject({ userId: LOBECHAT_ID, projectId: 'lobechat-users' });
  });

  it('with users.autoCreate off, refuses an unknown name with 400, saying which field named it and how to fix it', async () => {
    const store = await open();
    const { pay } = await setUp(store, { autoCreate: false });
    const byHeader = await pay({}, { 'X-Quota-User': LOBECHAT_ID });
    expect(byHeader.status).toBe(400);
    const header = ((await byHeader.json()) as { error: { code: string; param: string | null; message: string } }).error;
    expect(header).toMatchObject({ code: 'unknown_user', param: null });
    expect(header.message).toMatch(/^X-Quota-User names "user_2abc\w+", which is neither a lobe-quota user nor an external id linked to one, and users\.autoCreate is off/);
    expect(header.message).toContain(`lobe-quota users link <user> ${LOBECHAT_ID}`);

    const byBody = await pay({ user: LOBECHAT_ID });
    expect(byBody.status).toBe(400);
    const body = ((await byBody.json()) as { error: { code: string; param: string | null; message: string } }).error;
    expect(body).toMatchObject({ code: 'unknown_user', param: 'user' });
    expect(body.message).toMatch(/^The body field `user` names "user_2abc\w+"/);
    expect(await store.getUser(LOBECHAT_ID)).toBeNull();

    // Known names (and linked ones) still work.
    await store.createUser({ id: 'alice', name: 'Alice', projectId: null, externalIds: [LOBECHAT_ID] }, T0);
    expect(await (await pay({ user: LOBECHAT_ID })).json()).toMatchObject({ userId: 'alice' });
  });

  it.each([
    ['300 characters', 'u'.repeat(300)],
    ['a space', 'user 2abc'],
    ['a control character', 'user_\u001b[31m'],
    ['a colon (it would break user:ID scopes)', 'user:2abc'],
    ['a leading dot', '.user'],
  ])('refuses a name with %s as 400 naming the field, and creates nothing', async (_, name) => {
    const store = await open();
    const { pay } = await setUp(store);
    const byBody = await pay({ user: name });
    expect(byBody.status).toBe(400);
    const body = ((await byBody.json()) as { error: { code: string; param: string | null; message: string } }).error;
    expect(body).toMatchObject({ code: 'invalid_user', param: 'user' });
    expect(body.message).toMatch(/^user: ".*" \(\d+ characters\) is not a valid user id: /);
    expect(body.message).not.toMatch(/[\u0000-\u001f]/);
    expect(body.message.length).toBeLessThan(300);
    if (!/[\u0000-\u001f]/.test(name)) {
      // (HTTP refuses control characters in headers before lobe-quota sees them.)
      const byHeader = await pay({}, { 'X-Quota-User': name });
      expect(byHeader.status).toBe(400);
      expect(await byHeader.json()).toMatchObject({ error: { code: 'invalid_header', message: expect.stringMatching(/^X-Quota-User: /) } });
    }
    expect((await store.listUsers()).map((u) => u.id)).toEqual(['lobechat']);
  });

  it('an empty body `user` names nobody: the service key’s own user pays', async () => {
    const store = await open();
    const { pay } = await setUp(store);
    expect(await (await pay({ user: '' })).json()).toMatchObject({ userId: 'lobechat' });
    expect(await (await pay({ user: 42 })).json()).toMatchObject({ userId: 'lobechat' });
  });
});
