import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Upstream, type UpstreamConfig } from './upstreams.js';

const TIMEOUTS = { connectMs: 1_000, firstByteMs: 1_000, idleMs: 1_000 };

/** A server that records each request's headers and answers `{}`. */
async function recorder() {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { seen, baseUrl: `http://127.0.0.1:${port}/v1`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of cleanup) await close();
  cleanup = [];
});

async function headersSent(config: Omit<UpstreamConfig, 'baseUrl' | 'models' | 'name'>): Promise<IncomingHttpHeaders> {
  const server = await recorder();
  const upstream = new Upstream({ name: 'u', baseUrl: server.baseUrl, models: ['*'], ...config }, TIMEOUTS);
  cleanup.push(() => upstream.close(), server.close);
  const response = await upstream.request('/chat/completions', { method: 'POST', body: '{}' });
  await response.body.text();
  return server.seen[0] ?? {};
}

describe('Upstream: its own key, in the header its API reads', () => {
  it("goes out as OpenAI's bearer token by default", async () => {
    const headers = await headersSent({ apiKey: 'sk-upstream' });
    expect(headers.authorization).toBe('Bearer sk-upstream');
  });

  it('goes out in another header, unprefixed, when the upstream says so (nothing in Authorization)', async () => {
    const headers = await headersSent({ apiKey: 'sk-ant', keyHeader: { name: 'x-api-key', prefix: '' } });
    expect(headers['x-api-key']).toBe('sk-ant');
    expect(headers.authorization).toBeUndefined();
  });

  it('is left out when there is none', async () => {
    const headers = await headersSent({ apiKey: undefined });
    expect(headers.authorization).toBeUndefined();
  });
});
