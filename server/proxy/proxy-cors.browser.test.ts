import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

/**
 * LobeChat's client request mode in a real browser: the official OpenAI SDK, bundled for the
 * browser, runs in a page of another origin and calls the proxy directly, as LobeChat does when
 * "Use Client Request Mode" is on. Chromium enforces CORS, preflights included: nothing here can
 * pass unless the proxy's answers let it.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`server/proxy/proxy-cors.browser.test.ts SKIPPED: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);

// Typed for Node (no DOM lib): the page's global the SDK bundle sets.
declare const window: { OpenAI: new (options: object) => BrowserOpenAI };
interface BrowserOpenAI {
  chat: { completions: { create(body: object): { withResponse(): Promise<{ data: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>; response: { headers: { get(name: string): string | null } } }> } } };
}

let proxy: ProxyHarness | undefined;
let page: Server | undefined;
let pageUrl = '';
let browser: Browser | undefined;

async function servePage(): Promise<void> {
  const bundle = await build({
    stdin: { contents: "import OpenAI from 'openai'; window.OpenAI = OpenAI;", resolveDir: process.cwd() },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]?.text ?? '';
  page = createServer((req, res) => {
    if (req.url === '/openai.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>chat</title><script src="/openai.js"></script>');
  });
  await new Promise<void>((resolve) => page?.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
}

describe.skipIf(!hasChromium)('the OpenAI SDK in a browser page of another origin', () => {
  beforeAll(async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    await servePage();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (page ? page.close(resolve) : resolve(undefined)));
    await proxy?.close();
  });

  it('streams a chat through the proxy and reads the quota headers', async () => {
    if (!browser || !proxy) throw new Error('not started');
    const tab = await browser.newPage();
    await tab.goto(pageUrl);
    const result = await tab.evaluate(
      async ({ baseURL, apiKey }) => {
        const client = new window.OpenAI({ baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0 });
        const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
        let text = '';
        for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
        return { text, remaining: response.headers.get('x-quota-remaining'), limit: response.headers.get('x-quota-limit') };
      },
      { baseURL: `${proxy.url}/v1`, apiKey: proxy.alice.secret },
    );
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.limit).toBe('100000');
    expect(Number(result.remaining)).toBeLessThan(100_000);
    // The SDK's POST went upstream once; its preflight did not.
    expect(proxy.fake.requests).toHaveLength(1);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ userId: 'alice', outcome: 'ok' });
    await tab.close();
  });
});
