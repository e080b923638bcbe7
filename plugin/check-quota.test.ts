import { createHeadersWithPluginSettings } from '@lobehub/chat-plugin-sdk';
import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../server/config/schema.js';
import { ADMIN_TOKEN, testService, userWithKey, type TestService } from '../server/testing/harness.js';

const userMonthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

const settle = (svc: TestService, subject: { userId: string; projectId: string | null; keyId: string }, id: string, tokens: number) =>
  svc.store.settle({
    holdId: id,
    subject,
    usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
    now: svc.clock.now(),
  });

/** Alice has used 78,500 of her 100,000 tokens this month, Bob 12,000. */
async function twoUsers() {
  const svc = testService({ defaultBudgets: [userMonthly] });
  const alice = await userWithKey(svc.store, 'alice');
  const bob = await userWithKey(svc.store, 'bob');
  await settle(svc, alice.subject, 'a1', 78_500);
  await settle(svc, bob.subject, 'b1', 12_000);
  return { svc, alice, bob };
}

/** Exactly what LobeChat's gateway sends: arguments as text/plain, settings as a JSON header. */
const checkQuota = (svc: TestService, headers: Record<string, string>, body: string | undefined = '{}') =>
  svc.app.request('/plugin/check-quota', { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers } });

const withKey = (apiKey: string) => createHeadersWithPluginSettings({ apiKey }) as Record<string, string>;

/** A settings error names the problem to a person and carries nothing else. */
async function expectSettingsInvalid(response: Response, mentions: string) {
  expect(response.status).toBe(422);
  const text = await response.text();
  const body = JSON.parse(text) as { errorType: string; body: { message: string } };
  expect(body).toEqual({ errorType: 'PluginSettingsInvalid', body: { message: expect.stringContaining(mentions) } });
  for (const leak of ['78500', '12000', '100000', 'alice', 'ALICE', 'bob']) expect(text).not.toContain(leak);
}

describe('POST /plugin/check-quota', () => {
  it("answers with the key holder's own /quota JSON", async () => {
    const { svc, alice } = await twoUsers();
    const response = await checkQuota(svc, withKey(alice.secret));
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({
      subject: { kind: 'user', id: 'alice' },
      usage: 78_500,
      limit: 100_000,
      unit: 'tokens',
      percentage: 78.5,
      remaining: 21_500,
      status: 'normal',
      nextReset: '2026-12-01T00:00:00+08:00',
    });
    expect(body).toEqual(await (await svc.as(alice.secret, '/quota')).json());
  });

  it('gives each user their own numbers', async () => {
    const { svc, alice, bob } = await twoUsers();
    const [a, b] = await Promise.all([checkQuota(svc, withKey(alice.secret)), checkQuota(svc, withKey(bob.secret))]);
    expect(await a.json()).toMatchObject({ subject: { id: 'alice' }, usage: 78_500 });
    expect(await b.json()).toMatchObject({ subject: { id: 'bob' }, usage: 12_000, remaining: 88_000 });
  });

  it('takes no body, an empty object, or any JSON object of arguments; tolerates a pasted key with spaces', async () => {
    const { svc, alice } = await twoUsers();
    for (const body of [undefined, '', '{}', ' { "ignored": true } ']) {
      expect((await checkQuota(svc, withKey(alice.secret), body)).status, JSON.stringify(body)).toBe(200);
    }
    expect((await checkQuota(svc, withKey(`  ${alice.secret}\n`))).status).toBe(200);
  });

  it('answers with settings errors a person can act on, and no data, when there is no usable key', async () => {
    const { svc, alice } = await twoUsers();
    await expectSettingsInvalid(await checkQuota(svc, {}), "plugin's settings");
    await expectSettingsInvalid(await checkQuota(svc, createHeadersWithPluginSettings({}) as Record<string, string>), 'lq-');
    await expectSettingsInvalid(await checkQuota(svc, withKey('')), 'lq-');
    await expectSettingsInvalid(await checkQuota(svc, createHeadersWithPluginSettings({ apiKey: 42 }) as Record<string, string>), 'lq-');
    await expectSettingsInvalid(await checkQuota(svc, { 'x-lobe-plugin-settings': 'not json' }), 'lq-');
    await expectSettingsInvalid(await checkQuota(svc, { 'x-lobe-plugin-settings': JSON.stringify([alice.secret]) }), 'lq-');
    // The raw key alone is not the settings JSON LobeChat sends.
    await expectSettingsInvalid(await checkQuota(svc, { 'x-lobe-plugin-settings': alice.secret }), 'lq-');
    // Not a user key: an OpenAI key, or the admin token (which would otherwise read everyone).
    await expectSettingsInvalid(await checkQuota(svc, withKey('sk-proj-abc')), 'start with lq-');
    await expectSettingsInvalid(await checkQuota(svc, withKey(ADMIN_TOKEN)), 'start with lq-');
    // Authorization is not how the plugin authenticates; it must not stand in for the settings.
    await expectSettingsInvalid(await checkQuota(svc, { authorization: `Bearer ${alice.secret}` }), "plugin's settings");
  });

  it('refuses a wrong key and a revoked key the same way', async () => {
    const { svc, alice } = await twoUsers();
    await expectSettingsInvalid(await checkQuota(svc, withKey('lq-this-key-does-not-exist')), 'not valid or was revoked');
    await svc.store.revokeKey(alice.subject.keyId, svc.clock.now());
    await expectSettingsInvalid(await checkQuota(svc, withKey(alice.secret)), 'not valid or was revoked');
  });

  it('answers PluginApiParamsError to arguments that are not a JSON object, or too large', async () => {
    const { svc, alice } = await twoUsers();
    for (const body of ['not json', '[]', '"text"', '42', 'null', '{"unclosed": ']) {
      const response = await checkQuota(svc, withKey(alice.secret), body);
      expect(response.status, body).toBe(422);
      expect(await response.json()).toEqual({ errorType: 'PluginApiParamsError', body: { message: expect.stringContaining('JSON object') } });
    }
    const huge = JSON.stringify({ padding: 'x'.repeat(70 * 1024) });
    const response = await checkQuota(svc, withKey(alice.secret), huge);
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ errorType: 'PluginApiParamsError' });
  });

  it('checks the form of the settings before the arguments, as the gateway does', async () => {
    const { svc } = await twoUsers();
    await expectSettingsInvalid(await checkQuota(svc, {}, 'not json'), "plugin's settings");
  });

  it('only takes POST', async () => {
    const { svc } = await twoUsers();
    const response = await svc.app.request('/plugin/check-quota');
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect(await response.json()).toMatchObject({ errorType: 405 });
  });
});
