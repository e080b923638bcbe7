import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, listen, testService, userWithKey } from '../testing/harness.js';

/**
 * Deciding increase requests in a real (headless) Chromium: the approve link's confirm page (a GET
 * that changes nothing, a button that decides), and the dashboard's Approve and Deny buttons.
 * Screenshots go to test-results/screenshots, or to docs/screenshots with UPDATE_SCREENSHOTS=1.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const shots = process.env.UPDATE_SCREENSHOTS ? path.join(root, 'docs', 'screenshots') : path.join(root, 'test-results', 'screenshots');

declare const document: { querySelectorAll(selector: string): ArrayLike<{ dataset: Record<string, string> }> };

describe.skipIf(!hasChromium)('deciding increase requests in Chromium', { timeout: 60_000 }, () => {
  const svc = testService({ config: { publicUrl: null } });
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  const people: Record<string, string> = {};

  async function ask(user: string, body: object): Promise<string> {
    const response = await svc.as(people[user] as string, '/quota/requests', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    if (response.status !== 201) throw new Error(await response.text());
    return ((await response.json()) as { id: string }).id;
  }

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    for (const user of ['alice', 'bob']) {
      people[user] = (await userWithKey(svc.store, user)).secret;
      const put = await svc.admin('PUT', '/admin/budgets', { scope: `user:${user}`, window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 10_000 });
      if (!put.ok) throw new Error(await put.text());
    }
    server = await listen(svc.app.fetch);
    browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("shows the approve link's confirm page without deciding, and decides on its button", async () => {
    if (!browser || !server) throw new Error('not started');
    const id = await ask('alice', { amount: 20_000, reason: 'the release is on Friday' });
    const alerts = (await (await svc.admin('GET', '/admin/alerts?kind=request&limit=5')).json()) as { alerts: Array<{ links: { approve: string } }> };
    const approve = alerts.alerts[0]?.links.approve as string;
    // The link names the server it was made on; the test's server listens on another port.
    const link = new URL(approve);
    const page = await browser.newPage({ viewport: { width: 640, height: 420 } });
    await page.goto(`${server.url}${link.pathname}${link.search}`);
    expect(await page.textContent('body')).toContain('20,000');
    expect((await svc.store.getQuotaRequest(id))?.state).toBe('open');
    await page.screenshot({ path: path.join(shots, 'request-confirm.png') });
    await page.click('button[type=submit]');
    await page.waitForLoadState();
    expect((await svc.store.getQuotaRequest(id))?.state).toBe('approved');
    await page.close();
  });

  it('lists open requests in the dashboard and decides them with its buttons', async () => {
    if (!browser || !server) throw new Error('not started');
    const id = await ask('bob', { amount: 5_000, reason: 'a demo' });
    const page = await browser.newPage();
    await page.goto(`${server.url}/admin`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    expect(await page.evaluate(() => Array.from(document.querySelectorAll('#requests li.request')).map((li) => li.dataset.id))).toEqual([id]);
    expect(await page.textContent('#requests')).toContain('+5,000 tokens');
    await page.click(`#requests li[data-id="${id}"] button[aria-label^="Deny"]`);
    await page.waitForFunction(() => document.querySelectorAll('#requests li.request').length === 0);
    expect(await svc.store.getQuotaRequest(id)).toMatchObject({ state: 'denied', decidedBy: 'admin' });
    await page.close();
  });
});
