import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertEvent, RequestLinks } from '../alerts/alert-event.js';
import { AlertSender } from '../alerts/alert-sender.js';
import { createChannels } from '../alerts/channels/index.js';
import { startReceiver, type Receiver } from '../alerts/channels/receiver.test-util.js';
import { webhookSignature } from '../alerts/channels/webhook.js';
import { eventually } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

/**
 * The story end to end: alice at her limit asks for more over MCP, the webhook receives the
 * signed request alert with two links, the approve link's page then its POST grant it, her next
 * request through the OpenAI SDK is admitted, /quota shows the grant, and the next day starts
 * without it. Then the links that must change nothing.
 */

const DAY = 86_400_000;
const HOOK_SECRET = 'hook-secret';
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface World {
  p: ProxyHarness;
  receiver: Receiver;
  events: () => AlertEvent[];
  mcp: Client;
}

async function world(): Promise<World> {
  const receiver = await startReceiver({ status: 200, body: 'ok' });
  cleanups.push(() => receiver.close());
  let sender: AlertSender | undefined;
  const p = await startProxy({ alerts: { channelsFor: (alert) => (alert.kind.startsWith('request') ? ['hook'] : []), projection: false, recorded: () => sender?.wake() } });
  cleanups.push(() => p.close());
  const channels = createChannels([{ type: 'webhook', name: 'hook', url: receiver.url('/hook'), secret: HOOK_SECRET, kinds: ['request', 'request_decided'] }], { locale: 'en', now: () => p.svc.clock.now() });
  sender = new AlertSender({ store: p.svc.store, channels, clock: p.svc.clock });
  sender.start(3_600_000);
  cleanups.push(() => (sender as AlertSender).stop());
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', p.url), { requestInit: { headers: { Authorization: `Bearer ${p.alice.secret}` } } });
  const mcp = new Client({ name: 'requests-e2e', version: '1.0.0' });
  await mcp.connect(transport);
  cleanups.push(() => mcp.close());
  const put = await p.svc.admin('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 29 });
  expect(put.status).toBe(201);
  const events = () =>
    receiver.requests.map((r) => {
      // Verified as a receiver would, over the raw bytes.
      expect(r.headers['x-lobe-quota-signature']).toBe(webhookSignature(HOOK_SECRET, r.rawBody.toString()));
      return JSON.parse(r.rawBody.toString()) as AlertEvent;
    });
  return { p, receiver, events, mcp };
}

const ask = (client: OpenAI) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });
type ToolResult = { content: Array<{ type: string; text?: string }>; isError?: boolean };
const textOf = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('\n');

/** The form the confirm page posts: the link's own signed parameters. */
const formOf = (link: string) => {
  const q = new URL(link).searchParams;
  return new URLSearchParams({ tokens: q.get('tokens') ?? '', micros: q.get('micros') ?? '', expires: q.get('expires') ?? '', sig: q.get('sig') ?? '' });
};
const follow = (link: string, form = formOf(link)) =>
  fetch(new URL(link).origin + new URL(link).pathname, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });

async function askOverMcp(w: World, amount: number): Promise<{ links: RequestLinks; id: string }> {
  const before = w.receiver.requests.length;
  const answer = await w.mcp.callTool({ name: 'request_quota_increase', arguments: { amount, reason: 'release <b>week</b>' } });
  expect((answer as ToolResult).isError).toBeFalsy();
  expect(textOf(answer)).toContain(`${amount.toLocaleString('en-US')} tokens`);
  await eventually(async () => w.receiver.requests.length > before, 5_000, 'the request alert');
  const event = w.events().at(-1) as AlertEvent;
  expect(event).toMatchObject({ kind: 'request', scope: 'user:alice', request: { amountTokens: amount, state: 'open', userId: 'alice' } });
  return { links: event.links as RequestLinks, id: event.request?.id as string };
}

describe('increase requests, end to end', () => {
  it('alice at her limit (critical) asks over MCP, the approve link grants it, her next request passes, and the next day starts without it', async () => {
    const w = await world();
    const { p } = w;
    const client = p.client(p.alice.secret);
    await ask(client);
    await expect(ask(client)).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    const check = textOf(await w.mcp.callTool({ name: 'check_quota', arguments: {} }));
    expect(check).toContain('request_quota_increase');

    const { links, id } = await askOverMcp(w, 20_000);
    expect(links.approve.startsWith(`${p.url}/requests/${id}/approve?`)).toBe(true);
    expect(links.deny.startsWith(`${p.url}/requests/${id}/deny?`)).toBe(true);

    // GET: a confirm page, nothing decided.
    const page = await fetch(links.approve);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await page.text();
    expect(html).toContain('release &lt;b&gt;week&lt;/b&gt;');
    expect(html).toContain('20,000 tokens');
    expect((await p.svc.store.getQuotaRequest(id))?.state).toBe('open');

    const decided = await follow(links.approve);
    expect(decided.status).toBe(200);
    expect(await decided.text()).toContain('Approved');
    expect(await p.svc.store.getQuotaRequest(id)).toMatchObject({ state: 'approved', decidedBy: 'link', grantedTokens: 20_000 });
    await eventually(async () => w.receiver.requests.length === 2, 5_000, 'the decision alert');
    expect(w.events()[1]).toMatchObject({ kind: 'request_decided', request: { id, state: 'approved', decidedBy: 'link', grantedTokens: 20_000 } });

    await ask(client);
    const quota = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { limit: number; budgets: Array<{ limitTokens: number; grantedTokens?: number; grants?: Array<{ decidedBy: string }> }> };
    expect(quota.limit).toBe(20_029);
    expect(quota.budgets[0]).toMatchObject({ limitTokens: 20_029, grantedTokens: 20_000, grants: [{ decidedBy: 'link' }] });

    // The requester hears back once.
    expect(textOf(await w.mcp.callTool({ name: 'check_quota', arguments: {} }))).toMatch(/approved \(\+20,000 tokens granted, by link\)/);
    expect(textOf(await w.mcp.callTool({ name: 'check_quota', arguments: {} }))).not.toContain('approved');

    p.svc.clock.set(p.svc.clock.now() + DAY);
    const tomorrow = (await (await p.svc.as(p.alice.secret, '/quota')).json()) as { budgets: Array<{ limitTokens: number; grants?: unknown }> };
    expect(tomorrow.budgets[0]?.limitTokens).toBe(29);
    expect(tomorrow.budgets[0]?.grants).toBeUndefined();
  });

  it('a reused, expired, tampered or other-request link changes nothing and says why', async () => {
    const w = await world();
    const { p } = w;
    const first = await askOverMcp(w, 500);
    // Denied by its own link, the first request's approve link is then a reused one.
    expect((await follow(first.links.deny)).status).toBe(200);
    expect((await p.svc.store.getQuotaRequest(first.id))?.state).toBe('denied');
    const reused = await follow(first.links.approve);
    expect(reused.status).toBe(409);
    expect(await reused.text()).toContain('already denied');
    expect((await fetch(first.links.deny)).status).toBe(409);

    const second = await askOverMcp(w, 700);
    // Tampered: another amount under the same signature.
    const tampered = formOf(second.links.approve);
    tampered.set('tokens', '70000');
    expect((await follow(second.links.approve, tampered)).status).toBe(403);
    expect((await fetch(second.links.approve.replace('tokens=700', 'tokens=70000'))).status).toBe(403);
    // Another request's link: the first's signature on the second's path.
    const other = `${p.url}/requests/${second.id}/approve?${new URL(first.links.approve).searchParams.toString()}`;
    expect((await follow(other)).status).toBe(403);
    // A deny link's signature does not make an approval.
    expect((await follow(second.links.approve, formOf(second.links.deny))).status).toBe(403);
    // Expired: past linkTtlHours (72 h by default), on the fixed clock.
    p.svc.clock.set(p.svc.clock.now() + 73 * 3_600_000);
    const expired = await follow(second.links.approve);
    expect(expired.status).toBe(410);
    expect(await expired.text()).toContain('expired');

    expect(await p.svc.store.getQuotaRequest(second.id)).toMatchObject({ state: 'open' });
    expect(await p.svc.store.listGrants({})).toEqual([]);
  });
});
