import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceClient, startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

const LOBECHAT_ID = 'user_2abcDEFghiJKLmnoPQRstuVWXyz';
const ask = [{ role: 'user' as const, content: 'hi' }];

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const failure = (promise: Promise<unknown>) => promise.then(() => expect.unreachable('the request should fail'), (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
const userIds = async (p: ProxyHarness) => (await p.svc.store.listUsers()).map((u) => u.id).sort();

describe('who may create users by naming them', () => {
  it('a personal key naming someone new is a 403 and creates no one; its body `user` is not a payer at all', async () => {
    proxy = await startProxy();
    const personal = proxy.client(proxy.alice.secret);
    const error = await failure(personal.chat.completions.create({ model: 'gpt-4o-mini', messages: ask }, { headers: { 'X-Quota-User': LOBECHAT_ID } }));
    expect(error.status).toBe(403);
    expect(error.code).toBe('end_user_not_allowed');
    await personal.chat.completions.create({ model: 'gpt-4o-mini', messages: ask, user: LOBECHAT_ID });
    expect(await userIds(proxy)).toEqual(['alice']);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry?.userId).toBe('alice');
  });

  it.each([
    ['300 characters', 'u'.repeat(300)],
    ['spaces', 'user 2abc DEF'],
    ['control characters', 'user_2\u0000\u001b[2J'],
    ['a colon, which would make user:… scopes ambiguous', 'user:alice'],
  ])('a service key naming an id with %s in the body: 400 naming `user`, nothing created, nothing sent upstream', async (_, name) => {
    proxy = await startProxy();
    const lobechat = await serviceClient(proxy);
    const before = await userIds(proxy);
    const error = await failure(lobechat.chat.completions.create({ model: 'gpt-4o-mini', messages: ask, user: name }));
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_user');
    expect(error.param).toBe('user');
    expect(error.message).toMatch(/^400 user: ".*" \(\d+ characters\) is not a valid user id: /);
    expect(await userIds(proxy)).toEqual(before);
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('a service key naming an invalid id in X-Quota-User: 400 naming the header, nothing created', async () => {
    proxy = await startProxy();
    const lobechat = await serviceClient(proxy);
    const before = await userIds(proxy);
    for (const name of ['u'.repeat(300), 'user 2abc', '']) {
      const error = await failure(lobechat.chat.completions.create({ model: 'gpt-4o-mini', messages: ask }, { headers: { 'X-Quota-User': name } }));
      expect(error.status).toBe(400);
      expect(error.code).toBe('invalid_header');
      expect(error.message).toMatch(/^400 X-Quota-User: ".*" \(\d+ characters\) is not a valid user id/);
    }
    expect(await userIds(proxy)).toEqual(before);
    expect(proxy.fake.requests).toHaveLength(0);
  });
});
