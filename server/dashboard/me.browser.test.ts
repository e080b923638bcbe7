import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestSubject } from '../quota/scope.js';
import type { Outcome } from '../store/types.js';
import { ADMIN_TOKEN, T0, listen, testService } from '../testing/harness.js';
import { fitsWidth, hasChromium, inputValues, launchChromium, openPage, shots, storedText, type WatchedPage } from './browser-harness.js';
import { DASHBOARD_CSP } from './dashboard-routes.js';

/**
 * A user's own page, /me, in a real (headless) Chromium against the real server: signed in with
 * their `lq-` key, they see the plugin's card, their usage by day and model in their budget's time
 * zone (not the browser's), and their latest requests; never another user's.
 */
const DAY = 86_400_000;
const HOUR = 3_600_000;

describe.skipIf(!hasChromium)('a user’s own page in Chromium', { timeout: 60_000 }, () => {
  const svc = testService({ config: { publicUrl: null } });
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  const secrets: Record<string, string> = {};
  const subjects: Record<string, RequestSubject> = {};

  async function admin<T>(method: string, route: string, body?: unknown): Promise<T> {
    const response = await svc.admin(method, route, body);
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  let n = 0;
  const spend = (who: string, model: string, at: number, input: number, output: number, costMicros: number, outcome: Outcome = 'ok') =>
    svc.store.settle({
      holdId: `seed-${++n}`,
      subject: subjects[who]!,
      usage: { model, inputTokens: input, outputTokens: output, cachedTokens: 0, reasoningTokens: 0, costMicros, source: 'upstream', outcome, latencyMs: 1, sessionId: 'private-session', tags: { task: 'private-task' } },
      now: at,
    });

  beforeAll(async () => {
    await admin('POST', '/admin/projects', { id: 'research', name: 'Research' });
    for (const [id, name, projectId] of [['alice', 'Alice', 'research'], ['bob', 'Bob', null]] as const) {
      await admin('POST', '/admin/users', { id, name, projectId });
      const key = await admin<{ id: string; key: string }>('POST', '/admin/keys', { userId: id, name: 'lobechat' });
      secrets[id] = key.key;
      subjects[id] = { userId: id, projectId, keyId: key.id };
    }
    await admin('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 400_000 });
    await admin('PUT', '/admin/budgets', { scope: 'project:research', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitUsd: 40 });
    await admin('PUT', '/admin/budgets', { scope: 'user:bob', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 50_000 });
    // Two weeks of alice's work on three models, and bob's on a model of his own.
    for (let d = 13; d >= 1; d--) {
      await spend('alice', 'gpt-4o', T0 - d * DAY, 9_000 + d * 300, 2_000, 60_000 + d * 2_000);
      if (d % 2 === 0) await spend('alice', 'claude-sonnet-4-5', T0 - d * DAY + 2 * HOUR, 6_000, 2_500, 55_000);
      if (d % 3 === 0) await spend('alice', 'o3-mini', T0 - d * DAY + 4 * HOUR, 3_000, 4_000, 20_000);
      await spend('bob', 'bobs-secret-model', T0 - d * DAY, 4_000, 1_000, 9_000);
    }
    // 17:30 UTC on the 21st is 01:30 on the 22nd in Shanghai (and 12:30 on the 21st in New York).
    await spend('alice', 'o3-mini', Date.parse('2026-11-21T17:30:00Z'), 1_200, 800, 7_000);
    await spend('alice', 'gpt-4o', T0 - HOUR, 700, 300, 9_000, 'cut_off');
    server = await listen(svc.app.fetch);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signIn(key: string, options: { width?: number; dark?: boolean; timeZone?: string } = {}, expected = 'true'): Promise<WatchedPage> {
    if (!browser || !server) throw new Error('not started');
    const watched = await openPage(browser, `${server.url}/me`, { timeZone: 'America/New_York', now: T0, ...options });
    await watched.page.fill('#key', key);
    await watched.page.click('#login button[type=submit]');
    await watched.page.waitForSelector(`body[data-loaded="${expected}"]`, { state: 'attached' });
    return watched;
  }

  it('serves the page with no data and a strict CSP', async () => {
    const response = await fetch(`${server!.url}/me`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain('unsafe');
    const html = await response.text();
    expect(html).not.toMatch(/alice|bob/i);
    expect(html).not.toMatch(/<script>|<style>|\son\w+=/);
  });

  it('shows alice her own card, usage by day and model in her budget’s zone, and latest requests, and nothing of bob’s', async () => {
    const { page, requests, errors } = await signIn(secrets.alice!);
    // The plugin's card, drawn from her /quota.
    const quota = (await (await svc.as(secrets.alice!, '/quota')).json()) as { usage: number; limit: number; status: string };
    expect(await page.textContent('#card .title')).toBe('Quota · Alice');
    expect(await page.textContent('#card .usage')).toBe(quota.usage.toLocaleString('en-US'));
    expect(await page.textContent('#card .limit')).toBe(` / ${quota.limit.toLocaleString('en-US')} tokens`);
    expect(await page.getAttribute('#card', 'class')).toBe(`card status-${quota.status}`);
    expect(await page.locator('#card .others li').count()).toBe(1); // the project's dollars

    // Days in Asia/Shanghai (her binding budget's), though the browser is in New York.
    expect(await page.textContent('#usage-range')).toBe('2026-10-24 – 2026-11-22, days in Asia/Shanghai');
    const rows = await page.locator('#usage-table tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => (td as unknown as { textContent: string }).textContent)));
    expect(rows).toContainEqual(['2026-11-22', 'o3-mini', '1', '2,000', '$0.007']);
    expect(rows).toContainEqual(['2026-11-22', 'gpt-4o', '1', '1,000', '$0.009']);
    expect(new Set(rows.map((r) => r[1]))).toEqual(new Set(['gpt-4o', 'claude-sonnet-4-5', 'o3-mini']));
    const legend = await page.locator('#usage-chart .u-legend .u-series .u-label').allTextContents();
    expect(legend.sort()).toEqual(['claude-sonnet-4-5', 'gpt-4o', 'o3-mini']);
    const painted = await page.locator('#usage-chart canvas').evaluate((canvas) => {
      const c = canvas as unknown as { width: number; height: number; getContext(k: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let count = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) count++;
      return count / (c.width * c.height);
    });
    expect(painted).toBeGreaterThan(0.05);

    // Latest requests: newest first, times in her zone, no session or tags.
    const recent = await page.locator('#recent tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => (td as unknown as { textContent: string }).textContent)));
    expect(recent).toHaveLength(20);
    expect(recent[0]).toEqual(['2026-11-22 19:00', 'gpt-4o', '700', '300', '$0.009', 'cut off at the budget']);
    expect(recent[1]).toEqual(['2026-11-22 01:30', 'o3-mini', '1,200', '800', '$0.007', 'completed']);
    expect(await page.textContent('#recent-when')).toBe('When (Asia/Shanghai)');

    // Nothing of bob's anywhere; nothing private of hers either.
    const text = (await page.textContent('body')) ?? '';
    expect(text).not.toMatch(/bob|private-session|private-task/i);
    expect((await inputValues(page)).join('\n')).not.toMatch(/bob/i);
    expect(requests.some((r) => /bob/i.test(r.url))).toBe(false);

    // Her key: in this tab's sessionStorage and the Authorization header only.
    const stored = await storedText(page);
    expect(stored.local).toBe('');
    expect(stored.cookie).toBe('');
    expect(stored.session).toBe(`lobe-quota-user-key=${secrets.alice}`);
    expect(requests.some((r) => r.url.includes(secrets.alice!))).toBe(false);
    const calls = requests.filter((r) => new URL(r.url).pathname.startsWith('/quota'));
    expect(calls.map((r) => new URL(r.url).pathname).sort()).toEqual(['/quota', '/quota/alice/ledger', '/quota/alice/usage']);
    expect(calls.every((r) => r.authorization === `Bearer ${secrets.alice}`)).toBe(true);

    // What her key may not read, even asked by hand from her page: bob's history.
    const probe = await page.evaluate(async (key) => {
      const r = await fetch('/quota/bob/usage', { headers: { Authorization: `Bearer ${key}` } });
      return { status: r.status, body: await r.text() };
    }, secrets.alice!);
    expect(probe.status).toBe(403);
    expect(probe.body).not.toContain('bobs-secret-model');
    expect(errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
    await page.screenshot({ path: path.join(shots, 'me.png'), fullPage: true });
    await page.context().close();
  });

  it('shows bob his own, and none of alice’s', async () => {
    const { page, errors } = await signIn(secrets.bob!);
    expect(await page.textContent('#card .title')).toBe('Quota · Bob');
    expect(await page.textContent('#usage-range')).toBe('2026-10-24 – 2026-11-22, days in UTC');
    expect(await page.locator('#usage-chart .u-legend .u-series .u-label').allTextContents()).toEqual(['bobs-secret-model']);
    const text = (await page.textContent('body')) ?? '';
    expect(text).not.toMatch(/alice|gpt-4o|claude|o3-mini/i);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('lets her ask for more, with the API’s errors next to their fields', async () => {
    const { page, errors } = await signIn(secrets.alice!);
    await page.click('#ask-open');
    expect(await page.getAttribute('#ask-open', 'aria-expanded')).toBe('true');
    await page.fill('#ask-amount', '-5');
    await page.click('#ask-form button[type=submit]');
    await page.waitForSelector('#ask-amount-error:not([hidden])');
    expect(await page.textContent('#ask-amount-error')).toMatch(/>0|positive|greater/i);
    await page.fill('#ask-amount', '20000');
    await page.fill('#ask-reason', 'release week');
    await page.click('#ask-form button[type=submit]');
    await page.waitForSelector('#message:text("Asked for +20,000 tokens on user:alice")');
    const [request] = await svc.store.listQuotaRequests({ userId: 'alice' });
    expect(request).toMatchObject({ state: 'open', amountTokens: 20_000, reason: 'release week', scope: { kind: 'user', id: 'alice' } });
    expect(await page.locator('#ask-form').isHidden()).toBe(true);
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([]);
    await page.context().close();
  });

  it('refuses a wrong key and the admin token, keeping neither', async () => {
    const wrong = await signIn('lq-not-a-real-key', {}, 'error');
    expect(await wrong.page.textContent('#message')).toBe('That key is not valid (or was revoked): the server answered 401.');
    expect(await wrong.page.locator('#content').isHidden()).toBe(true);
    expect((await storedText(wrong.page)).session).toBe('');
    await wrong.context.close();

    const adminToken = await signIn(ADMIN_TOKEN, {}, 'error');
    expect(await adminToken.page.textContent('#message')).toMatch(/^Not allowed: this is the admin token/);
    expect(await adminToken.page.locator('#content').isHidden()).toBe(true);
    expect(await adminToken.page.textContent('body')).not.toMatch(/alice|bob/i);
    expect((await storedText(adminToken.page)).session).toBe('');
    await adminToken.context.close();
  });

  it('fits a 320 px phone, in dark mode too', async () => {
    for (const dark of [false, true]) {
      const { page, errors } = await signIn(secrets.alice!, { width: 320, dark });
      const size = await fitsWidth(page);
      expect(size.client).toBe(320);
      expect(size.scroll).toBeLessThanOrEqual(320);
      const chart = await page.locator('#usage-chart canvas').evaluate((c) => (c as unknown as { width: number }).width);
      expect(chart).toBeLessThanOrEqual(300);
      await page.screenshot({ path: path.join(shots, dark ? 'me-320-dark.png' : 'me-320.png'), fullPage: true });
      expect(errors).toEqual([]);
      await page.context().close();
    }
  });
});
