import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../server/config/schema.js';
import { ADMIN_TOKEN, listen, testService, userWithKey, type TestService } from '../server/testing/harness.js';
import { budgetOutputSchema, quotaOutputSchema } from './mcp-route.js';

const userMonthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

/** Figures that only alice's or only bob's status contains: none may leak to anyone else. */
const ALICE_MARKS = ['ALICE', '78,500', '78500', '78.5', '21,500', '21500'];
const BOB_MARKS = ['BOB', '9.6', '12,000', '12000', '0.4', 'rolling'];

interface Served {
  url: string;
  port: number;
  close: () => Promise<void>;
}

let svc: TestService;
let alice: Awaited<ReturnType<typeof userWithKey>>;
let bob: Awaited<ReturnType<typeof userWithKey>>;
const cleanups: Array<() => Promise<unknown>> = [];

async function serveApp(port = 0): Promise<Served> {
  if (port === 0) {
    const served = await listen(svc.app.fetch);
    cleanups.push(served.close);
    return { ...served, port: Number(new URL(served.url).port) };
  }
  // A "restarted" server on the port the client already knows (the harness only picks free ports).
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: svc.app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      if ('closeAllConnections' in server) server.closeAllConnections();
    });
  cleanups.push(close);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, port, close };
}

/** An MCP client as LobeChat builds it: streamable HTTP, the key as a bearer header. */
async function connect(url: string, key?: string, fetch?: typeof globalThis.fetch): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', url), {
    requestInit: key === undefined ? {} : { headers: { Authorization: `Bearer ${key}` } },
    ...(fetch ? { fetch } : {}),
  });
  const client = new Client({ name: 'lobe-quota-test', version: '1.0.0' });
  cleanups.push(() => client.close());
  await client.connect(transport);
  return { client, transport };
}

const quotaOf = async (key: string): Promise<unknown> => (await svc.as(key, '/quota')).json();

type ToolResult = { content: Array<{ type: string; text?: string }>; structuredContent?: unknown; isError?: boolean };
const textOf = (result: ToolResult): string => result.content.map((c) => c.text ?? '').join('\n');

beforeEach(async () => {
  svc = testService({ defaultBudgets: [userMonthly] });
  alice = await userWithKey(svc.store, 'alice', 'research');
  bob = await userWithKey(svc.store, 'bob', 'ops');
  // Bob is bound by a dollar budget on his project, and his key has a rolling token budget.
  expect((await svc.admin('PUT', '/admin/budgets', { scope: 'project:ops', window: { kind: 'day', timeZone: 'UTC' }, limitUsd: 10 })).status).toBe(201);
  expect((await svc.admin('PUT', '/admin/budgets', { scope: `key:${bob.subject.keyId}`, window: { kind: 'rolling', hours: 5 }, limitTokens: 20_000 })).status).toBe(201);
  const settle = (subject: typeof alice.subject, id: string, tokens: number, costMicros: number) =>
    svc.store.settle({
      holdId: id,
      subject,
      usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });
  await settle(alice.subject, 'a1', 78_500, 1_230_000);
  await settle(bob.subject, 'b1', 12_000, 9_600_000);
});

afterEach(async () => {
  // Clients before servers; each step runs even if an earlier one failed.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await svc.upstreams.close();
  await svc.store.close();
});

describe('MCP at /mcp', () => {
  it('lists check_quota: no required arguments, an output schema shaped like /quota', async () => {
    const { url } = await serveApp();
    const { client, transport } = await connect(url, alice.secret);
    expect(client.getServerVersion()?.name).toBe('lobe-quota');
    // Stateless: the server never handed out a session id.
    expect(transport.sessionId).toBeUndefined();

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['check_quota', 'request_quota_increase']);
    const tool = tools[0]!;
    expect(tool.title).toBe('Check quota');
    expect(tool.description).toMatch(/quota.*usage.*spending/s);
    expect(tool.description).toContain('额度');
    expect(tool.annotations).toMatchObject({ readOnlyHint: true });
    expect(tool.inputSchema.required ?? []).toEqual([]);
    expect(tool.inputSchema.properties).toMatchObject({ locale: { type: 'string', enum: ['en', 'zh'] } });

    const output = tool.outputSchema as { type: string; properties: Record<string, Record<string, unknown>>; required?: string[]; additionalProperties?: unknown };
    expect(output.type).toBe('object');
    expect(Object.keys(output.properties)).toEqual(['subject', 'usage', 'limit', 'unit', 'percentage', 'remaining', 'status', 'nextReset', 'budgets']);
    expect(output.properties.unit).toMatchObject({ anyOf: [{ type: 'string', enum: ['tokens', 'usd'] }, { type: 'null' }] });
    // Extra fields, now or added to /quota later, must not fail a client's validation.
    expect(output.additionalProperties).not.toBe(false);
    expect((output.properties.budgets?.items as { additionalProperties?: unknown }).additionalProperties).not.toBe(false);
  });

  it("returns each caller's own status: structured content equal to GET /quota, Markdown with their numbers", async () => {
    const { url } = await serveApp();
    const asAlice = (await connect(url, alice.secret)).client;
    const asBob = (await connect(url, bob.secret)).client;
    await asAlice.listTools(); // the SDK client validates structured content against the listed schema

    await asBob.listTools();
    const a = (await asAlice.callTool({ name: 'check_quota', arguments: {} })) as ToolResult;
    const b = (await asBob.callTool({ name: 'check_quota', arguments: {} })) as ToolResult;
    expect(a.isError).toBeFalsy();
    expect(b.isError).toBeFalsy();

    expect(a.structuredContent).toEqual(await quotaOf(alice.secret));
    expect(b.structuredContent).toEqual(await quotaOf(bob.secret));
    expect(a.structuredContent).toMatchObject({ subject: { id: 'alice' }, usage: 78_500, limit: 100_000, unit: 'tokens', status: 'normal' });
    expect(b.structuredContent).toMatchObject({ subject: { id: 'bob' }, usage: 9.6, limit: 10, unit: 'usd', status: 'critical' });

    const aliceText = textOf(a);
    expect(aliceText).toContain('### Quota for ALICE');
    expect(aliceText).toContain('███████████████░░░░░ 78.5 %');
    expect(aliceText).toContain('78,500 of 100,000 tokens');
    expect(aliceText).toContain('2026-12-01T00:00:00+08:00 (in 8 days 4 h)');
    const bobText = textOf(b);
    expect(bobText).toContain('### Quota for BOB');
    expect(bobText).toContain('███████████████████░ 96.0 %');
    expect(bobText).toContain('\\$9.60 of \\$10.00');
    expect(bobText).toMatch(/\| key:key\\_\w+ \| rolling 5 h \| 12,000 tokens \| 20,000 tokens \| 60\.0 % \|/);

    for (const mark of BOB_MARKS) expect(JSON.stringify(a)).not.toContain(mark);
    for (const mark of ALICE_MARKS) expect(JSON.stringify(b)).not.toContain(mark);
  });

  it('answers in Chinese when asked, and ignores arguments it does not know', async () => {
    const { url } = await serveApp();
    const { client } = await connect(url, alice.secret);
    const zh = (await client.callTool({ name: 'check_quota', arguments: { locale: 'zh' } })) as ToolResult;
    expect(textOf(zh)).toContain('- **已用：** 78,500 / 100,000 tokens');
    const extra = (await client.callTool({ name: 'check_quota', arguments: { user: 'bob' } })) as ToolResult;
    expect(extra.structuredContent).toEqual(await quotaOf(alice.secret));
  });

  it.each([
    ['no key', undefined],
    ['a wrong key', 'lq-not-a-real-key-000000000000000000'],
    ['the admin token', ADMIN_TOKEN],
    ['a string that is not a key', 'hello'],
  ])('refuses %s: the client rejects and sees nobody’s numbers', async (_name, key) => {
    const { url } = await serveApp();
    const error = await connect(url, key).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const message = String((error as Error).message);
    expect(message).toMatch(/401|key|token/i);
    for (const mark of [...ALICE_MARKS, ...BOB_MARKS]) expect(message).not.toContain(mark);
  });

  it('refuses a key revoked after the client connected, on its next call', async () => {
    const { url } = await serveApp();
    const { client } = await connect(url, alice.secret);
    expect((await svc.admin('DELETE', `/admin/keys/${alice.subject.keyId}`)).status).toBe(200);
    await expect(client.callTool({ name: 'check_quota', arguments: {} })).rejects.toThrow(/Unknown or revoked key/);
    await expect(client.listTools()).rejects.toThrow();
  });

  it('answers 401 with a JSON-RPC error and WWW-Authenticate, even to a bare tools/call', async () => {
    const { url } = await serveApp();
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'check_quota', arguments: {} } };
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
    for (const auth of [undefined, 'Bearer lq-wrong', `Bearer ${ADMIN_TOKEN}`, 'Basic YWxpY2U6eA==']) {
      const response = await fetch(`${url}/mcp`, { method: 'POST', headers: { ...headers, ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify(call) });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="lobe-quota"/);
      const body = (await response.json()) as { jsonrpc: string; id: null; error: { code: number; message: string } };
      expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32001 } });
      for (const mark of [...ALICE_MARKS, ...BOB_MARKS]) expect(body.error.message).not.toContain(mark);
    }

    // The same bare call with a good key works without any initialize: nothing is kept between requests.
    const ok = await fetch(`${url}/mcp`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${bob.secret}` }, body: JSON.stringify(call) });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^application\/json/);
    expect(ok.headers.get('mcp-session-id')).toBeNull();
    const answer = (await ok.json()) as { result: { structuredContent: unknown } };
    expect(answer.result.structuredContent).toEqual(await quotaOf(bob.secret));
  });

  it('keeps working across a server restart: no session to lose', async () => {
    // A connection per request: a pooled keep-alive socket to the closed server could be picked
    // before the client has read its FIN (same process, no delay), and fail with "other side
    // closed". That is a socket race, not what this test is about: sessions.
    const agent = new Agent({ pipelining: 0 });
    cleanups.push(() => agent.close());
    const noKeepAlive = ((url: string | URL, init?: RequestInit) =>
      undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof globalThis.fetch;

    const first = await serveApp();
    const { client, transport } = await connect(first.url, alice.secret, noKeepAlive);
    expect(((await client.callTool({ name: 'check_quota', arguments: {} })) as ToolResult).structuredContent).toMatchObject({ usage: 78_500 });

    await first.close();
    await serveApp(first.port);

    // The very client LobeChat kept, without reconnecting, and a fresh one.
    expect(transport.sessionId).toBeUndefined();
    const again = (await client.callTool({ name: 'check_quota', arguments: {} })) as ToolResult;
    expect(again.structuredContent).toEqual(await quotaOf(alice.secret));
    expect((await client.listTools()).tools).toHaveLength(2);
    const fresh = (await connect(first.url, alice.secret)).client;
    expect(((await fresh.callTool({ name: 'check_quota', arguments: {} })) as ToolResult).structuredContent).toEqual(await quotaOf(alice.secret));
  });

  it('answers GET and DELETE with 405 and a JSON-RPC error; OPTIONS with CORS', async () => {
    const { url } = await serveApp();
    for (const method of ['GET', 'DELETE']) {
      const response = await fetch(`${url}/mcp`, { method, headers: { authorization: `Bearer ${alice.secret}`, accept: 'text/event-stream' } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toContain('POST');
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000 } });
    }

    const preflight = await fetch(`${url}/mcp`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:3210', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');

    // Real answers (the transport's own Response, and the 401) carry the CORS headers too.
    const init = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
    const post = (auth: string) =>
      fetch(`${url}/mcp`, {
        method: 'POST',
        headers: { origin: 'http://localhost:3210', authorization: auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(init),
      });
    const ok = await post(`Bearer ${alice.secret}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('*');
    const refused = await post('Bearer lq-wrong');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(refused.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('www-authenticate');
  });
});

describe('the output schema', () => {
  it('accepts the /quota document and names every field it has today', async () => {
    const status = (await quotaOf(bob.secret)) as { budgets: Array<Record<string, unknown>> };
    expect(quotaOutputSchema.safeParse(status).success).toBe(true);
    // Loose on purpose, so this is what notices a /quota field the schema does not describe yet.
    expect(Object.keys(quotaOutputSchema.shape).sort()).toEqual(Object.keys(status).sort());
    const described = Object.keys(budgetOutputSchema.shape);
    for (const budget of status.budgets) expect(Object.keys(budget).filter((k) => !described.includes(k))).toEqual([]);
  });
});
