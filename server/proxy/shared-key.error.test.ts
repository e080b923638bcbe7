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

describe('users.autoCreate off: an unknown end user is refused, and the error says who named it and how to fix it', () => {
  it('named by X-Quota-User', async () => {
    proxy = await startProxy({ config: { users: { autoCreate: false, autoCreateProjectId: null } } });
    const lobechat = await serviceClient(proxy);
    const error = await failure(lobechat.chat.completions.create({ model: 'gpt-4o-mini', messages: ask }, { headers: { 'X-Quota-User': LOBECHAT_ID } }));
    expect(error.status).toBe(400);
    expect(error.code).toBe('unknown_user');
    expect(error.param).toBeNull();
    expect(error.message).toContain(`X-Quota-User names "${LOBECHAT_ID}", which is neither a lobe-quota user nor an external id linked to one`);
    expect(error.message).toContain(`lobe-quota users link <user> ${LOBECHAT_ID}`);
    expect(error.message).toContain('"users": {"autoCreate": true}');
    expect(proxy.fake.requests).toHaveLength(0);
    expect(await proxy.svc.store.getUser(LOBECHAT_ID)).toBeNull();
  });

  it('named by the body field user', async () => {
    proxy = await startProxy({ config: { users: { autoCreate: false, autoCreateProjectId: null } } });
    const lobechat = await serviceClient(proxy);
    const error = await failure(lobechat.chat.completions.create({ model: 'gpt-4o-mini', messages: ask, user: LOBECHAT_ID }));
    expect(error.status).toBe(400);
    expect(error.code).toBe('unknown_user');
    expect(error.param).toBe('user');
    expect(error.message).toContain(`The body field \`user\` names "${LOBECHAT_ID}"`);
    expect(proxy.fake.requests).toHaveLength(0);
    expect(await proxy.svc.store.getUser(LOBECHAT_ID)).toBeNull();

    // Linked, the same request goes through and charges the person.
    await proxy.svc.admin('POST', '/admin/users/alice/external-ids', { externalId: LOBECHAT_ID });
    await lobechat.chat.completions.create({ model: 'gpt-4o-mini', messages: ask, user: LOBECHAT_ID });
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry?.userId).toBe('alice');
  });
});
