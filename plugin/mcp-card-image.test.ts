import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../server/config/schema.js';
import type { StatusLevel } from '../server/quota/status.js';
import type { QuotaStatus } from '../server/quota/status-report.js';
import { ADMIN_TOKEN, listen, testService, userWithKey } from '../server/testing/harness.js';
import { CARD_COLORS, STATUS_COLORS } from './card-image/card-colors.js';
import { CARD_SCALE, CARD_WIDTH, cardLayout, HEADER } from './card-image/card-layout.js';
import { barPoints, decodePng, inkIn, opaque, pixelAt } from './card-image/card-png.test-util.js';

/**
 * check_quota's image block through the MCP SDK's own client, as LobeHub 2.x calls it: a real
 * server on a port, streamable HTTP, the key as a bearer header.
 */
const userMonthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

type Block = { type: string; text?: string; data?: string; mimeType?: string };
type ToolResult = { content: Block[]; structuredContent?: unknown };

const svc = testService({ defaultBudgets: [userMonthly] });
let url: string;
const keys = new Map<string, string>();
const cleanups: Array<() => Promise<unknown>> = [];

/** Users whose monthly use puts them at each status: 50 %, 85 %, 97 %, 104 %. */
const LEVELS: Array<[StatusLevel, number]> = [
  ['normal', 50_000],
  ['warning', 85_000],
  ['critical', 97_000],
  ['exceeded', 104_000],
];

beforeAll(async () => {
  for (const [status, tokens] of LEVELS) {
    const { secret, subject } = await userWithKey(svc.store, status);
    keys.set(status, secret);
    await svc.store.settle({
      holdId: `h-${status}`,
      subject,
      usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });
  }
  const served = await listen(svc.app.fetch);
  cleanups.push(served.close);
  url = served.url;
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await svc.upstreams.close();
  await svc.store.close();
});

async function connect(key: string | undefined, headers: Record<string, string> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', url), {
    requestInit: { headers: { ...headers, ...(key === undefined ? {} : { Authorization: `Bearer ${key}` }) } },
  });
  const client = new Client({ name: 'lobe-quota-test', version: '1.0.0' });
  cleanups.push(() => client.close());
  await client.connect(transport);
  return client;
}

const checkQuota = async (client: Client, args: Record<string, unknown> = {}) =>
  (await client.callTool({ name: 'check_quota', arguments: args })) as ToolResult;

const imageOf = (result: ToolResult): Block => {
  const images = result.content.filter((c) => c.type === 'image');
  expect(images).toHaveLength(1);
  return images[0]!;
};

describe('check_quota’s card image over MCP', () => {
  it('is a PNG block beside the Markdown: the layout’s size at 2×, at most 150 KB', async () => {
    const client = await connect(keys.get('normal'));
    const result = await checkQuota(client);
    expect(result.content.map((c) => c.type)).toEqual(['text', 'image']);
    const image = imageOf(result);
    expect(image.mimeType).toBe('image/png');
    const png = Buffer.from(image.data!, 'base64');
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.length).toBeLessThanOrEqual(150 * 1024);

    const decoded = decodePng(png);
    const { height } = cardLayout(result.structuredContent as QuotaStatus, { locale: 'en', now: svc.clock.now() });
    expect([decoded.width, decoded.height]).toEqual([CARD_WIDTH * CARD_SCALE, height * CARD_SCALE]);
  });

  it.each(LEVELS)('colours the bar of a %s budget with its status colour, the rest with the track’s', async (status) => {
    const result = await checkQuota(await connect(keys.get(status)));
    const quota = result.structuredContent as QuotaStatus;
    expect(quota.status).toBe(status);
    const image = decodePng(Buffer.from(imageOf(result).data!, 'base64'));
    const { filled, empty } = barPoints(quota.percentage!);
    expect(pixelAt(image, ...filled!)).toEqual(opaque(STATUS_COLORS[status]));
    if (status === 'exceeded') expect(empty).toBeNull(); // a full bar
    else expect(pixelAt(image, ...empty!)).toEqual(opaque(CARD_COLORS.track));
  });

  it('is Chinese with locale "zh", or by default when Accept-Language prefers Chinese', async () => {
    const english = await checkQuota(await connect(keys.get('warning')));
    const chinese = await checkQuota(await connect(keys.get('warning')), { locale: 'zh' });
    const [en, zh] = [english, chinese].map((r) => decodePng(Buffer.from(imageOf(r).data!, 'base64')));
    expect(Buffer.compare(en!.data, zh!.data)).not.toBe(0);
    const title = { ...HEADER, width: HEADER.width / 2 };
    expect(inkIn(en!, title)).toBeGreaterThan(1_000);
    expect(inkIn(zh!, title)).toBeGreaterThan(1_000);

    const browserZh = await checkQuota(await connect(keys.get('warning'), { 'Accept-Language': 'zh-CN,zh;q=0.9,en;q=0.8' }));
    expect(imageOf(browserZh).data).toBe(imageOf(chinese).data);
    expect(browserZh.content[0]!.text).toContain('的额度');
    // An explicit locale wins over the header.
    const asked = await checkQuota(await connect(keys.get('warning'), { 'Accept-Language': 'zh-CN' }), { locale: 'en' });
    expect(imageOf(asked).data).toBe(imageOf(english).data);
  });

  it.each([
    ['no key', undefined],
    ['an unknown key', 'lq-not-a-real-key-000000000000000000'],
    ['the admin token', ADMIN_TOKEN],
  ])('never draws one for %s: 401 before any tool runs', async (_name, key) => {
    await expect(connect(key)).rejects.toThrow(/401|key|token/i);
    const call = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'check_quota', arguments: {} } }),
    });
    expect(call.status).toBe(401);
    const body = await call.text();
    expect(body).not.toContain('image');
    expect(body).not.toContain('iVBORw0KGgo'); // base64 of a PNG's signature
  });

  it('never draws one for a key revoked after the client connected', async () => {
    const { secret, subject } = await userWithKey(svc.store, 'revoked');
    const client = await connect(secret);
    expect(imageOf(await checkQuota(client)).mimeType).toBe('image/png');
    expect((await svc.admin('DELETE', `/admin/keys/${subject.keyId}`)).status).toBe(200);
    await expect(checkQuota(client)).rejects.toThrow(/Unknown or revoked key/);
  });
});
