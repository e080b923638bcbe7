import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, listen, testService } from '../testing/harness.js';

/**
 * Names in the dashboard come from admins and clients: a user's name, a model the client asked
 * for. A hostile or careless one (100 KB, with terminal escapes) must neither widen the page nor
 * show raw control characters.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`server/dashboard/dashboard-long-names.browser.test.ts SKIPPED: ${CHROMIUM} is missing`);

declare const document: {
  documentElement: { scrollWidth: number; clientWidth: number };
  body: { textContent: string | null };
};

const ESCAPE = '\u001b[31m';
const LONG_NAME = `${ESCAPE}Mallory${'m'.repeat(100_000)}`;
const LONG_MODEL = `${ESCAPE}model-${'x'.repeat(100_000)}`;

describe.skipIf(!hasChromium)('the dashboard with 100 KB names in Chromium', { timeout: 60_000 }, () => {
  const svc = testService();
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  const errors: string[] = [];

  beforeAll(async () => {
    // Straight into the store: the admin API would refuse such a name, a store fed by other paths may not.
    await svc.store.createUser({ id: 'mallory', name: LONG_NAME, projectId: null }, svc.clock.now());
    const subject = { userId: 'mallory', projectId: null, keyId: 'key_mallory' };
    await svc.store.putBudget(
      { scope: { kind: 'user', id: 'mallory' }, window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
      svc.clock.now(),
    );
    await svc.store.settle({
      holdId: 'seed-1',
      subject,
      usage: { model: LONG_MODEL, inputTokens: 600, outputTokens: 200, cachedTokens: 0, reasoningTokens: 0, costMicros: 5_000, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: svc.clock.now() - 3_600_000,
    });
    server = await listen(svc.app.fetch);
    browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signedIn(width: number): Promise<Page> {
    if (!browser || !server) throw new Error('not started');
    const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/admin`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    return page;
  }

  it.each([1280, 360])('stays within a %i px viewport, and shows names cut and with escapes visible', async (width) => {
    const page = await signedIn(width);
    const size = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(size.client).toBe(width);
    expect(size.scroll).toBeLessThanOrEqual(size.client);

    const text = await page.evaluate(() => document.body.textContent ?? '');
    expect(text).not.toContain('\u001b');
    expect(text.length).toBeLessThan(20_000);
    const name = await page.locator('.budget-name', { hasText: 'Mallory' }).textContent();
    expect(name).toMatch(/^\\x1b\[31mMallorym+…$/);
    expect(await page.locator('#chart-model .u-legend .u-label').allTextContents()).toEqual([expect.stringMatching(/^\\x1b\[31mmodel-x+…$/)]);
    expect(await page.locator('.alert-scope').allTextContents()).toContainEqual(expect.stringMatching(/^\\x1b\[31mMallorym*…/));
    expect(errors).toEqual([]);
  });
});
