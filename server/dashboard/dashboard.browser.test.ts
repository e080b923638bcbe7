import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestSubject } from '../quota/scope.js';
import type { Outcome } from '../store/types.js';
import { ADMIN_TOKEN, T0, listen, testService } from '../testing/harness.js';

/**
 * The operators' dashboard in a real (headless) Chromium, served by the real server on a seeded
 * database. Screenshots go to test-results/screenshots, or to docs/screenshots with UPDATE_SCREENSHOTS=1.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`server/dashboard/dashboard.browser.test.ts SKIPPED: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const shots = process.env.UPDATE_SCREENSHOTS ? path.join(root, 'docs', 'screenshots') : path.join(root, 'test-results', 'screenshots');
const DAY = 86_400_000;

// This file is typed for Node (no DOM lib); these are the browser globals its page callbacks use.
interface Canvas { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null }
declare const document: {
  documentElement: { scrollWidth: number; clientWidth: number };
  querySelectorAll(selector: string): ArrayLike<Canvas>;
};

interface BudgetStatus { id: string; scope: string; percentage: number; status: string; usedTokens: number; limitTokens: number | null; usedUsd: number; limitUsd: number | null }
interface QuotaAnswer { subjects: Array<{ budgets: BudgetStatus[] }> }
interface UsageAnswer { rows: Array<{ user: string; requests: number; totalTokens: number; costUsd: number }> }
interface AlertsAnswer { alerts: Array<{ id: string; scope: string }> }

describe.skipIf(!hasChromium)(`the dashboard in Chromium${hasChromium ? '' : ` (SKIPPED: ${CHROMIUM} is missing)`}`, { timeout: 60_000 }, () => {
  const svc = testService();
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  const errors: string[] = [];

  async function admin<T>(method: string, route: string, body?: unknown): Promise<T> {
    const response = await svc.admin(method, route, body);
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  const subjects: Record<string, RequestSubject> = {};
  async function person(id: string, name: string, projectId: string | null) {
    await admin('POST', '/admin/users', { id, name, projectId });
    const key = await admin<{ id: string }>('POST', '/admin/keys', { userId: id, name: 'lobechat' });
    subjects[id] = { userId: id, projectId, keyId: key.id };
  }

  let n = 0;
  const spend = (who: string, model: string, daysAgo: number, tokens: number, costMicros: number, outcome: Outcome = 'ok') =>
    svc.store.settle({
      holdId: `seed-${++n}`,
      subject: subjects[who]!,
      usage: { model, inputTokens: Math.round(tokens * 0.7), outputTokens: tokens - Math.round(tokens * 0.7), cachedTokens: 0, reasoningTokens: 0, costMicros, source: 'upstream', outcome, latencyMs: 1, sessionId: null, tags: {} },
      now: T0 - daysAgo * DAY - 3_600_000,
    });

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    await admin('POST', '/admin/projects', { id: 'research', name: 'Research' });
    await admin('POST', '/admin/projects', { id: 'lab', name: 'Lab' });
    await person('alice', 'Alice', 'research');
    await person('bob', 'Bob', 'research');
    await person('carol', 'Carol', 'lab');
    await person('dave', 'Dave', null);
    // A LobeChat server's id for alice, and a service key of dave's that wants refusals as answers.
    await admin('POST', '/admin/users/alice/external-ids', { externalId: 'user_2abcDEFghiJKLmnoPQRstuVWXyz' });
    await admin('POST', '/admin/keys', { userId: 'dave', name: 'lobechat server', service: true, refusalStyle: 'answer' });
    const budget = (scope: string, window: unknown, limits: { limitTokens?: number; limitUsd?: number }) => admin('PUT', '/admin/budgets', { scope, window, ...limits });
    await budget('user:alice', { kind: 'month', timeZone: 'UTC' }, { limitTokens: 400_000 });
    await budget('user:bob', { kind: 'month', timeZone: 'UTC' }, { limitTokens: 150_000 });
    await budget('user:carol', { kind: 'day', timeZone: 'UTC' }, { limitTokens: 20_000 });
    await budget('project:research', { kind: 'month', timeZone: 'UTC' }, { limitUsd: 3.6 });
    await budget('global', { kind: 'month', timeZone: 'UTC' }, { limitTokens: 2_000_000 });

    // Twelve days of traffic, each person with their own models and rhythm.
    for (let d = 11; d >= 0; d--) {
      await spend('alice', 'gpt-4o', d, 12_000 + d * 900, 180_000 + d * 9_000);
      if (d % 2 === 0) await spend('alice', 'o3-mini', d, 8_000, 90_000);
      await spend('bob', 'gpt-4o-mini', d, 9_000 + (d % 3) * 2_000, 15_000);
      if (d % 3 === 0) await spend('dave', 'gpt-4o', d, 20_000, 400_000);
      if (d < 6) await spend('carol', 'gpt-4o-mini', d, 4_000 + d * 500, 6_000);
    }
    await spend('carol', 'gpt-4o-mini', 0, 17_500, 20_000, 'cut_off');
    await spend('bob', 'gpt-4o-mini', 1, 1_200, 2_000, 'cut_off');
    await spend('alice', 'gpt-4o', 2, 600, 9_000, 'client_abort');
    // two answers bob had from the response cache, free: what they would have cost is saved
    for (const id of ['hit-1', 'hit-2']) {
      await svc.store.settle({
        holdId: id,
        subject: subjects.bob!,
        usage: { model: 'gpt-4o-mini', inputTokens: 0, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'cache', outcome: 'ok', latencyMs: 0, sessionId: null, tags: {}, savedTokens: 1_500, savedMicros: 250_000 },
        now: T0 - DAY,
      });
    }
    // a request of dave's in flight: the global budget is all he has
    await svc.store.reserve({ holdId: 'dave-in-flight', subject: subjects.dave!, quote: { tokens: 12_000, micros: 0 }, now: T0, ttlMs: 3_600_000 });

    server = await listen(svc.app.fetch);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(options: { width?: number; height?: number; dark?: boolean } = {}): Promise<Page> {
    if (!browser || !server) throw new Error('not started');
    const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 900 }, colorScheme: options.dark ? 'dark' : 'light', deviceScaleFactor: 1 });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
    });
    const response = await page.goto(`${server.url}/admin`);
    expect(response?.status()).toBe(200);
    return page;
  }

  async function signIn(page: Page, token: string, expected: 'true' | 'error' = 'true') {
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.waitForSelector(`body[data-loaded="${expected}"]`, { state: 'attached' });
  }

  const nonEmptyCanvases = (page: Page) =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll('.uplot canvas')).map((canvas) => {
        const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? new Uint8ClampedArray();
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
        return { width: canvas.width, height: canvas.height, painted };
      }),
    );

  it('serves the page without a token, but the admin API still needs one', async () => {
    const page = await fetch(`${server!.url}/admin`);
    expect(page.status).toBe(200);
    expect(await page.text()).not.toContain('alice');
    expect((await fetch(`${server!.url}/admin/users`)).status).toBe(401);
    expect((await fetch(`${server!.url}/admin/usage?groupBy=user`)).status).toBe(401);
  });

  it('shows nothing before the token, and draws budgets, charts, top consumers, outcomes and alerts after', async () => {
    const page = await open();
    expect(await page.locator('#content').isHidden()).toBe(true);
    expect(await page.locator('.budget').count()).toBe(0);
    await signIn(page, ADMIN_TOKEN);
    expect(await page.locator('#message').isHidden()).toBe(true);

    // (a) every budget once, with the numbers of GET /quota
    const quota = await admin<QuotaAnswer>('GET', '/quota');
    const budgets = new Map<string, BudgetStatus>();
    for (const s of quota.subjects) for (const b of s.budgets) budgets.set(`${b.id}|${b.scope}`, b);
    expect(budgets.size).toBe(5);
    const shown = await page.locator('.budget').evaluateAll((items) =>
      items.map((li) => ({
        key: `${(li as unknown as { dataset: Record<string, string> }).dataset.id}|${(li as unknown as { dataset: Record<string, string> }).dataset.scope}`,
        className: li.className,
        pct: li.querySelector('.pct')?.textContent ?? '',
        figures: li.querySelector('.budget-figures')?.textContent ?? '',
        width: (li.querySelector('.fill') as unknown as { style: { width: string } } | null)?.style.width ?? '',
      })),
    );
    expect(shown.map((s) => s.key).sort()).toEqual([...budgets.keys()].sort());
    const fmt = (v: number) => v.toLocaleString('en-US');
    const money = (v: number) => new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(v);
    for (const s of shown) {
      const b = budgets.get(s.key)!;
      expect(s.className).toBe(`budget status-${b.status}`);
      expect(s.pct).toBe(`${fmt(b.percentage)}%`);
      const tokens = b.limitTokens === null ? null : `${fmt(b.usedTokens)} / ${fmt(b.limitTokens)} tokens`;
      const dollars = b.limitUsd === null ? null : `${money(b.usedUsd)} / ${money(b.limitUsd)}`;
      expect(s.figures).toBe([tokens, dollars].filter((x) => x !== null).join(' · '));
      expect(s.width).toBe(`${Math.min(100, b.percentage)}%`);
    }
    // what requests in flight hold: only the global budget covers dave's request
    const held = await page.locator('.budget').evaluateAll((items) =>
      items.map((li) => [(li as unknown as { dataset: Record<string, string> }).dataset.scope, li.querySelector('.budget-held')?.textContent ?? null]),
    );
    expect(held.filter(([, text]) => text !== null)).toEqual([['global', '12,000 tokens held by requests in flight']]);
    // sorted fullest first, and the statuses seeded: carol over her day, research near its $25
    expect(shown.map((s) => budgets.get(s.key)!.percentage)).toEqual([...budgets.values()].map((b) => b.percentage).sort((x, y) => y - x));
    expect(new Set([...budgets.values()].map((b) => b.status))).toEqual(new Set(['exceeded', 'critical', 'warning', 'normal']));

    // (b) three stacked charts, drawn
    expect(await page.locator('.uplot').count()).toBe(3);
    const canvases = await nonEmptyCanvases(page);
    expect(canvases).toHaveLength(3);
    for (const c of canvases) {
      expect(c.width).toBeGreaterThan(200);
      expect(c.painted).toBeGreaterThan(c.width * c.height * 0.05);
    }
    expect(await page.locator('#chart-user .u-legend .u-series .u-label').allTextContents()).toEqual(expect.arrayContaining(['alice', 'bob', 'carol', 'dave']));
    expect(await page.locator('#chart-model .u-legend .u-series .u-label').allTextContents()).toEqual(expect.arrayContaining(['gpt-4o', 'gpt-4o-mini', 'o3-mini']));
    expect(await page.locator('#chart-project .u-legend .u-series .u-label').allTextContents()).toEqual(expect.arrayContaining(['research', 'lab', '(none)']));
    await page.click('#unit-usd');
    expect(await page.getAttribute('#unit-usd', 'aria-pressed')).toBe('true');
    expect((await nonEmptyCanvases(page)).every((c) => c.painted > 0)).toBe(true);
    expect(await page.locator('.uplot').evaluateAll((plots) => plots.map((p) => (p as unknown as { dataset: Record<string, string> }).dataset.unit))).toEqual(['usd', 'usd', 'usd']);
    await page.click('#unit-tokens');

    // (c) top consumers: GET /admin/usage?groupBy=user by cost
    const usage = await admin<UsageAnswer>('GET', '/admin/usage?groupBy=user');
    const byCost = [...usage.rows].sort((a, b) => b.costUsd - a.costUsd);
    const rows = await page.locator('#top tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => (td as unknown as { textContent: string | null }).textContent ?? '')));
    expect(rows).toEqual(byCost.map((r) => [r.user, fmt(r.requests), fmt(r.totalTokens), money(r.costUsd)]));
    expect(rows[0]?.[0]).toBe('alice');
    expect(await page.locator('#cache-saved').textContent()).toBe('Response cache: 2 answers served without the upstream, saving 3,000 tokens and $0.50.');

    // (e) cut-offs and client aborts from the ledger
    expect(await page.locator('[data-outcome=cut_off] dd').textContent()).toBe('2');
    expect(await page.locator('[data-outcome=client_abort] dd').textContent()).toBe('1');
    expect(await page.locator('[data-outcome=upstream_error] dd').textContent()).toBe('0');
    expect(await page.locator('[data-outcome=refused] dd').textContent()).toBe('0');

    // (d) recent alerts: the ones the API lists, newest first
    const alerts = await admin<AlertsAnswer>('GET', '/admin/alerts?limit=20');
    expect(alerts.alerts.length).toBeGreaterThan(3);
    expect(await page.locator('.alert').evaluateAll((lis) => lis.map((li) => (li as unknown as { dataset: Record<string, string> }).dataset.id))).toEqual(alerts.alerts.map((a) => a.id));
    expect(await page.locator('.alert-figures').first().textContent()).toMatch(/ of .*%$/);

    await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
  });

  it('lists users with their external ids, and their active keys with service and refusal style', async () => {
    const page = await open();
    await signIn(page, ADMIN_TOKEN);
    const rows = await page.locator('#users tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        user: (tr as unknown as { dataset: Record<string, string> }).dataset.user,
        cells: Array.from(tr.querySelectorAll(':scope > td'), (td) => (td as unknown as { textContent: string | null }).textContent ?? ''),
        keys: Array.from(tr.querySelectorAll('.user-key'), (li) => (li as unknown as { textContent: string | null }).textContent ?? ''),
      })),
    );
    expect(rows.map((r) => r.user)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(rows[0]?.cells.slice(0, 3)).toEqual(['Alice (alice)', 'research', 'user_2abcDEFghiJKLmnoPQRstuVWXyz']);
    expect(rows[3]?.cells.slice(0, 3)).toEqual(['Dave (dave)', '', '']);
    expect(rows[0]?.keys).toEqual([expect.stringMatching(/^lobechat · lq-\S+… · refusals: default$/)]);
    // (keys made at the same instant are listed in id order, which is random)
    expect(rows[3]?.keys.sort()).toEqual([
      expect.stringMatching(/^lobechat server · lq-\S+… · service · refusals as answers$/),
      expect.stringMatching(/^lobechat · lq-\S+… · refusals: default$/),
    ]);
    expect(await page.locator('#users-note').isHidden()).toBe(true);
  });

  it('a wrong token: the API answers 401, the page says so and shows no data', async () => {
    const page = await open();
    errors.length = 0;
    await signIn(page, 'not-the-admin-token', 'error');
    expect(await page.locator('#message').textContent()).toMatch(/^Wrong token: the server answered 401/);
    expect(await page.locator('#content').isHidden()).toBe(true);
    expect(await page.locator('.budget, .alert, #top tbody tr, #users tbody tr, .uplot').count()).toBe(0);
    // the browser logs each refused fetch; nothing else may be logged
    expect(errors.every((e) => /status of 401/.test(e))).toBe(true);
    errors.length = 0;
    await page.screenshot({ path: path.join(shots, 'dashboard-wrong-token.png') });
  });

  it('fits a 360 px phone without horizontal scrolling, in dark mode', async () => {
    const page = await open({ width: 360, height: 800, dark: true });
    await signIn(page, ADMIN_TOKEN);
    const size = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(size.client).toBe(360);
    expect(size.scroll).toBeLessThanOrEqual(size.client);
    const canvases = await nonEmptyCanvases(page);
    expect(canvases).toHaveLength(3);
    for (const c of canvases) {
      expect(c.width).toBeLessThanOrEqual(360);
      expect(c.painted).toBeGreaterThan(0);
    }
    await page.screenshot({ path: path.join(shots, 'dashboard-phone.png'), fullPage: true });
  });

  it('logged no script errors, CSP violations or warnings', () => {
    expect(errors).toEqual([]);
  });
});
