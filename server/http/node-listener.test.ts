import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { listen } from '../testing/harness.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

let proxy: ProxyHarness | undefined;
let viaHono: { url: string; close: () => Promise<void> } | undefined;
afterEach(async () => {
  await viaHono?.close();
  await proxy?.close();
  proxy = viaHono = undefined;
});

/** One app served both ways: as main serves it (startProxy) and through @hono/node-server alone. */
async function bothWays() {
  proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
  viaHono = await listen(proxy.svc.app.fetch);
  return { direct: proxy.url, hono: viaHono.url, key: proxy.alice.secret };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request, so that a header can be sent twice (`headers` as name, value, name, value…). */
function send(url: string, path: string, headers: string[], body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${url}${path}`);
    // Given as a list, the headers are sent as they are: Host too must be in it.
    const all = ['host', target.host, ...headers, 'content-length', String(Buffer.byteLength(body))];
    const req = httpRequest(target, { method: 'POST', headers: all }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What a client sees of an answer, without what differs from one answer to the next (the second one spent more). */
function seen({ status, headers, body }: Answer) {
  const { date: _date, 'x-request-id': _id, 'openai-processing-ms': _ms, 'keep-alive': _ka, connection: _c, 'x-quota-remaining': remaining, ...rest } = headers;
  let parsed: unknown = body;
  try {
    const json = JSON.parse(body) as { id?: unknown; created?: unknown };
    delete json.id;
    delete json.created;
    parsed = json;
  } catch {
    // not JSON: compared as text
  }
  return { status, headers: { ...rest, remaining: remaining !== undefined }, body: parsed };
}

const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('nodeListener: the metered routes answered straight from Node answer as through Hono', () => {
  it('an answer, a missing key, a bad body and a key given twice look the same both ways', async () => {
    const { direct, hono, key } = await bothWays();
    const cases: Array<{ what: string; headers: string[]; body: string }> = [
      { what: 'answered', headers: ['authorization', `Bearer ${key}`, 'content-type', 'application/json'], body: chatBody },
      { what: 'no key', headers: ['content-type', 'application/json'], body: chatBody },
      { what: 'not JSON', headers: ['authorization', `Bearer ${key}`, 'content-type', 'application/json'], body: '{"model":' },
      { what: 'no model', headers: ['authorization', `Bearer ${key}`, 'content-type', 'application/json'], body: '{"messages":[]}' },
      // A web Request joins the copies ("Bearer …, Bearer …"), which is no key: Node alone would keep the first.
      { what: 'key twice', headers: ['authorization', `Bearer ${key}`, 'authorization', `Bearer ${key}`, 'content-type', 'application/json'], body: chatBody },
    ];
    for (const { what, headers, body } of cases) {
      proxy?.fake.enqueue({ kind: 'reply', outputTokens: 3 });
      const one = seen(await send(direct, '/v1/chat/completions', headers, body));
      proxy?.fake.enqueue({ kind: 'reply', outputTokens: 3 });
      const other = seen(await send(hono, '/v1/chat/completions', headers, body));
      expect(one, what).toEqual(other);
    }
    // The answered case went through admission and settlement both ways: two entries.
    const [row] = await proxy!.svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' });
    expect(row?.requests).toBe(2);
  });

  it('a request the direct path does not take (a query string, an Origin) still goes through the app', async () => {
    const { direct, key } = await bothWays();
    const headers = ['authorization', `Bearer ${key}`, 'content-type', 'application/json'];
    proxy?.fake.enqueue({ kind: 'reply', outputTokens: 3 });
    const withQuery = await send(direct, '/v1/chat/completions?x=1', headers, chatBody);
    expect(withQuery.status).toBe(200);
    proxy?.fake.enqueue({ kind: 'reply', outputTokens: 3 });
    const fromPage = await send(direct, '/v1/chat/completions', [...headers, 'origin', 'http://localhost:3210'], chatBody);
    expect(fromPage.status).toBe(200);
    // proxyCors, which only the app runs, let the page read the answer.
    expect(fromPage.headers['access-control-allow-origin']).toBe('*');
  });
});
