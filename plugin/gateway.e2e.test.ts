import { createHeadersWithPluginSettings, type LobeChatPluginManifest } from '@lobehub/chat-plugin-sdk';
import { createGatewayOnEdgeRuntime } from '@lobehub/chat-plugins-gateway';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DefaultBudget } from '../server/config/schema.js';
import { listen, testService, userWithKey } from '../server/testing/harness.js';

/**
 * LobeChat's real plugin gateway (the code its `/webapi/plugin/gateway` route runs) in front of a
 * real lobe-quota server on a port: the manifest it is given is the one that server serves, so the
 * URLs in it, the settings schema and the error shapes are all checked the way LobeChat checks them.
 */

const userMonthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

// PUBLIC_URL unset: the manifest must point at whatever origin the client reached.
const svc = testService({ defaultBudgets: [userMonthly], config: { publicUrl: null } });
let server: Awaited<ReturnType<typeof listen>>;
let manifest: LobeChatPluginManifest;
let alice: Awaited<ReturnType<typeof userWithKey>>;
let bob: Awaited<ReturnType<typeof userWithKey>>;

// Only consulted when a call carries no manifest, which LobeChat never does for a custom plugin;
// pointed at a closed local port so nothing can reach the network.
const gateway = createGatewayOnEdgeRuntime({ pluginsIndexUrl: 'http://127.0.0.1:9/plugins-index.json' });

const settle = (subject: { userId: string; projectId: string | null; keyId: string }, id: string, tokens: number) =>
  svc.store.settle({
    holdId: id,
    subject,
    usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
    now: svc.clock.now(),
  });

beforeAll(async () => {
  vi.spyOn(console, 'info').mockImplementation(() => {}); // the gateway logs every call
  alice = await userWithKey(svc.store, 'alice');
  bob = await userWithKey(svc.store, 'bob');
  await settle(alice.subject, 'a1', 78_500);
  await settle(bob.subject, 'b1', 12_000);
  server = await listen(svc.app.fetch);
  manifest = (await (await fetch(`${server.url}/manifest.json`)).json()) as LobeChatPluginManifest;
});

afterAll(async () => {
  await server.close();
  vi.restoreAllMocks();
});

/** The request LobeChat's browser sends to its gateway when the model calls checkQuota. */
const callThroughGateway = (settings: Record<string, unknown>) =>
  gateway(
    new Request('http://lobechat.local/webapi/plugin/gateway', {
      method: 'POST',
      body: JSON.stringify({ apiName: 'checkQuota', arguments: JSON.stringify({}), identifier: 'lobe-quota', manifest, type: 'default' }),
      headers: createHeadersWithPluginSettings(settings),
    }),
  );

const ownQuota = async (secret: string) =>
  (await fetch(`${server.url}/quota`, { headers: { authorization: `Bearer ${secret}` } })).json() as Promise<Record<string, unknown>>;

describe('checkQuota through the LobeChat plugin gateway', () => {
  it('is served a manifest whose api URL is the listening server', () => {
    expect(manifest.api[0]?.url).toBe(`${server.url}/plugin/check-quota`);
    expect(manifest.ui?.url).toBe(`${server.url}/plugin/card.html`);
  });

  it("returns the key holder's own /quota JSON, verbatim, for each user", async () => {
    for (const { secret, id, usage } of [
      { secret: alice.secret, id: 'alice', usage: 78_500 },
      { secret: bob.secret, id: 'bob', usage: 12_000 },
    ]) {
      const response = await callThroughGateway({ apiKey: secret });
      expect(response.status).toBe(200);
      // LobeChat stores this text as the tool message; it parses as JSON, so the card is drawn.
      const content = JSON.parse(await response.text()) as Record<string, unknown>;
      const quota = await ownQuota(secret);
      expect(content).toMatchObject({ subject: { id }, usage, limit: 100_000, unit: 'tokens', nextReset: '2026-12-01T00:00:00+08:00' });
      for (const field of ['usage', 'limit', 'percentage', 'remaining', 'status', 'nextReset'] as const) expect(content[field], field).toEqual(quota[field]);
      expect(content).toEqual(quota);
    }
  });

  it('a well-formed but wrong or revoked key: our 422 comes back wrapped, status kept, errorType the status', async () => {
    const revoked = await userWithKey(svc.store, 'carol');
    await svc.store.revokeKey(revoked.subject.keyId, svc.clock.now());
    for (const apiKey of ['lq-this-key-does-not-exist', revoked.secret]) {
      const response = await callThroughGateway({ apiKey });
      expect(response.status).toBe(422);
      // The gateway answers `createErrorResponse(response.status, await response.text())`, so
      // errorType is the number 422 and body is our own error as text.
      const outer = JSON.parse(await response.text()) as { errorType: unknown; body: string };
      expect(outer.errorType).toBe(422);
      expect(JSON.parse(outer.body)).toEqual({ errorType: 'PluginSettingsInvalid', body: { message: expect.stringContaining('not valid or was revoked') } });
      expect(outer.body).not.toMatch(/78500|12000|alice|bob/i);
    }
  });

  it('a missing or malformed key never reaches us: the gateway itself answers PluginSettingsInvalid from the settings schema', async () => {
    for (const settings of [{}, { apiKey: 'sk-proj-not-ours' }]) {
      const response = await callThroughGateway(settings);
      expect(response.status).toBe(422);
      // This errorType is the one LobeChat answers by showing the plugin's settings form in the chat.
      const outer = (await response.json()) as { errorType: unknown; body: { message: string } };
      expect(outer.errorType).toBe('PluginSettingsInvalid');
      expect(outer.body.message).toContain('settings');
    }
  });
});
