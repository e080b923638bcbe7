import { createHeadersWithPluginSettings, type LobeChatPluginManifest } from '@lobehub/chat-plugin-sdk';
import { createGatewayOnEdgeRuntime } from '@lobehub/chat-plugins-gateway';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DefaultBudget } from '../server/config/schema.js';
import { listen, testService, userWithKey } from '../server/testing/harness.js';

/**
 * The 1.x plugin's second api, `requestQuotaIncrease`, called the way LobeChat calls it: through
 * its real plugin gateway, with the manifest the server serves and the key in the plugin settings.
 */

const daily: DefaultBudget = { scope: 'user', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 10_000, limitUsd: null, onLimit: 'reject' };
const svc = testService({ defaultBudgets: [daily], config: { publicUrl: null } });
const gateway = createGatewayOnEdgeRuntime({ pluginsIndexUrl: 'http://127.0.0.1:9/plugins-index.json' });
let server: Awaited<ReturnType<typeof listen>>;
let manifest: LobeChatPluginManifest;
let alice: Awaited<ReturnType<typeof userWithKey>>;

beforeAll(async () => {
  vi.spyOn(console, 'info').mockImplementation(() => {});
  alice = await userWithKey(svc.store, 'alice');
  await svc.store.settle({
    holdId: 'seed',
    subject: alice.subject,
    usage: { model: 'gpt-4o', inputTokens: 9_800, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
    now: svc.clock.now(),
  });
  server = await listen(svc.app.fetch);
  manifest = (await (await fetch(`${server.url}/manifest.json`)).json()) as LobeChatPluginManifest;
});

afterAll(async () => {
  await server.close();
  vi.restoreAllMocks();
});

const call = (args: object, settings: Record<string, unknown> = { apiKey: alice.secret }) =>
  gateway(
    new Request('http://lobechat.local/webapi/plugin/gateway', {
      method: 'POST',
      body: JSON.stringify({ apiName: 'requestQuotaIncrease', arguments: JSON.stringify(args), identifier: 'lobe-quota', manifest, type: 'default' }),
      headers: createHeadersWithPluginSettings(settings),
    }),
  );

describe('requestQuotaIncrease through the LobeChat plugin gateway', () => {
  it('opens an increase request for the key holder and answers the quota (for the card), the request and a sentence', async () => {
    const response = await call({ amount: 5_000, reason: 'a deadline' });
    expect(response.status).toBe(200);
    const content = JSON.parse(await response.text()) as { subject: { id: string }; status: string; request: { state: string; amountTokens: number; userId: string }; message: string };
    expect(content.subject.id).toBe('alice');
    expect(content.status).toBe('critical');
    expect(content.request).toMatchObject({ state: 'open', amountTokens: 5_000, userId: 'alice' });
    expect(content.message).toContain('5,000');
    expect(await svc.store.listQuotaRequests({ state: 'open' })).toHaveLength(1);
  });

  it('refuses a second open request on the same budget, and bad arguments, as plugin errors that name the problem', async () => {
    const again = await call({ amount: 1_000 });
    expect(again.status).toBeGreaterThanOrEqual(400);
    expect(await again.text()).toMatch(/already|open/i);
    const bad = await call({ amount: -3 });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(await bad.text()).toContain('amount');
    expect(await svc.store.listQuotaRequests({ state: 'open' })).toHaveLength(1);
  });
});
