import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, T0, listen, testService } from '../testing/harness.js';
import { hasChromium, launchChromium, openPage, type BrowserDocument } from './browser-harness.js';

/**
 * Names hold whatever admins and clients typed: here, markup that would run if any of it went into
 * the page as HTML. On every view of /admin and on /me it must show as the text it is, create no
 * element, and run nothing (the CSP would block an inline handler, and say so in the console: the
 * test sees no such report, because nothing was ever parsed as HTML).
 */
const USER_NAME = '<img src=x onerror="document.title=\'pwned\'">Mallory';
const PROJECT_NAME = '<svg onload="document.title=\'pwned\'">R&D</svg>';
const KEY_NAME = '<iframe srcdoc="<script>parent.document.title=1</script>">';
const MODEL = '<script>document.title="pwned"</script>gpt';
const REASON_LIKE_NAME = '"><b onmouseover=alert(1)>bold</b>';

declare const window: { alerted?: boolean };

describe.skipIf(!hasChromium)('markup in names, in Chromium', { timeout: 60_000 }, () => {
  const svc = testService({ alerts: { channelsFor: () => ['ops'], projection: false } });
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  let secret = '';

  beforeAll(async () => {
    const admin = async (method: string, route: string, body?: unknown) => {
      const response = await svc.admin(method, route, body);
      if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
      return (await response.json()) as Record<string, string>;
    };
    // The admin API takes these names as they are: they are names, not HTML.
    await admin('POST', '/admin/projects', { id: 'rnd', name: PROJECT_NAME });
    await admin('POST', '/admin/users', { id: 'mallory', name: USER_NAME, projectId: 'rnd' });
    await admin('POST', '/admin/users', { id: 'eve', name: REASON_LIKE_NAME });
    const key = await admin('POST', '/admin/keys', { userId: 'mallory', name: KEY_NAME });
    secret = key.key as string;
    await admin('PUT', '/admin/budgets', { scope: 'user:mallory', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 10_000 });
    const subject = { userId: 'mallory', projectId: 'rnd', keyId: key.id as string };
    await svc.store.settle({
      holdId: 'seed',
      subject,
      usage: { model: MODEL, inputTokens: 5_000, outputTokens: 1_000, cachedTokens: 0, reasoningTokens: 0, costMicros: 40_000, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: T0 - 3_600_000,
    });
    await svc.store.reserve({ holdId: 'req_markup', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: 3_600_000 });
    server = await listen(svc.app.fetch);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Nothing ran: no alert, the title untouched, no element from a name. */
  async function nothingRan(page: Page, title: string, dialogs: string[]) {
    expect(dialogs).toEqual([]);
    expect(await page.title()).toBe(title);
    expect(await page.evaluate(() => window.alerted ?? false)).toBe(false);
    const injected = await page.evaluate(() =>
      Array.from((globalThis as unknown as { document: BrowserDocument }).document.querySelectorAll('main img, main svg, main iframe, main script, main b, main [onerror], main [onload], main [onmouseover]'), (e) => e.id || 'element'),
    );
    expect(injected).toEqual([]);
  }

  it('shows the names as text on every view of /admin, and runs none of them', async () => {
    const { page, errors } = await openPage(browser!, `${server!.url}/admin`);
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    const views: Array<[string, string[]]> = [
      ['#overview', [USER_NAME, MODEL]],
      ['#people', [USER_NAME, PROJECT_NAME, REASON_LIKE_NAME, KEY_NAME]],
      ['#people/mallory', [USER_NAME, KEY_NAME]],
      ['#keys', [KEY_NAME, USER_NAME]],
      ['#budgets', [USER_NAME]],
      ['#holds', [USER_NAME]],
      ['#alerts', [USER_NAME]],
    ];
    for (const [hash, names] of views) {
      await page.evaluate((h) => { (globalThis as unknown as { location: { hash: string } }).location.hash = h; }, hash);
      const id = `#view-${hash.slice(1).split('/')[0]}`;
      await page.waitForSelector(`${id}:not([hidden])`);
      if (hash === '#alerts') await page.waitForSelector('#alert-list li.m-alert');
      const text = (await page.textContent(id)) ?? '';
      for (const name of names) expect(text, `${hash} shows ${name}`).toContain(name);
      await nothingRan(page, 'lobe-quota · Dashboard', dialogs);
    }
    // In the selects too, as option text.
    expect(await page.locator('#key-user option', { hasText: 'Mallory' }).textContent()).toBe(`${USER_NAME} (mallory)`);
    // A confirmation quoting a name shows it as text.
    await page.evaluate(() => { (globalThis as unknown as { location: { hash: string } }).location.hash = '#keys'; });
    await page.click('#keys-table button:text-is("Revoke")');
    await page.waitForSelector('#confirm-dialog[open]');
    expect(await page.textContent('#confirm-text')).toContain(KEY_NAME);
    expect(await page.locator('#confirm-dialog iframe').count()).toBe(0);
    await page.click('#confirm-cancel');
    await nothingRan(page, 'lobe-quota · Dashboard', dialogs);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('shows the names as text on /me, and runs none of them', async () => {
    const { page, errors } = await openPage(browser!, `${server!.url}/me`, { now: T0 });
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.fill('#key', secret);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    expect(await page.textContent('#card .title')).toBe(`Quota · ${USER_NAME}`);
    expect(await page.textContent('#who')).toBe(USER_NAME);
    expect(await page.textContent('#recent tbody tr td:nth-child(2)')).toBe(MODEL);
    expect(await page.locator('#usage-chart .u-legend .u-label').allTextContents()).toEqual([MODEL]);
    await nothingRan(page, 'lobe-quota · My usage', dialogs);
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
