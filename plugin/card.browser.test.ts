import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { T0, listen, testService } from '../server/testing/harness.js';

/**
 * The card in a real (headless) Chromium: served by the real server, embedded by a host page on
 * another origin that speaks LobeChat's side of the protocol, fed `/quota` answers of the server.
 * Screenshots go to test-results/screenshots, or to docs/screenshots with UPDATE_SCREENSHOTS=1.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`plugin/card.browser.test.ts SKIPPED: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const shots = process.env.UPDATE_SCREENSHOTS ? path.join(root, 'docs', 'screenshots') : path.join(root, 'test-results', 'screenshots');

const STEP = 5_000;

// This file is typed for Node (no DOM lib); these are the browser globals its page callbacks use.
interface HostWindow {
  requests: string[];
  evil: number;
  renderCard(content: unknown): void;
  parent: HostWindow;
  document: BrowserDocument;
  postMessage(message: unknown, targetOrigin: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}
interface BrowserDocument {
  documentElement: { lang: string; scrollWidth: number; clientWidth: number; scrollHeight: number };
  querySelector(selector: string): { textContent: string | null } | null;
  getElementById(id: string): { contentWindow?: HostWindow | null } | null;
}
declare const window: HostWindow;
declare const document: BrowserDocument;
declare function getComputedStyle(element: unknown): { backgroundColor: string; color: string };

interface Person {
  secret: string;
  subject: { userId: string; projectId: string | null; keyId: string };
}

/** A stand-in for LobeChat: the host page and its script, and the `/quota` answers as fixtures. */
async function hostServer(fixtures: Map<string, string>) {
  const files: Record<string, [string, string]> = {
    '/card-host.html': ['card-host.html', 'text/html; charset=utf-8'],
    '/card-host.js': ['card-host.js', 'text/javascript; charset=utf-8'],
  };
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://host');
      const file = files[url.pathname];
      const fixture = /^\/fixtures\/([\w-]+)\.json$/.exec(url.pathname)?.[1];
      if (file) {
        res.writeHead(200, { 'content-type': file[1] }).end(await readFile(path.join(here, 'testing', file[0])));
      } else if (fixture !== undefined && fixtures.has(fixture)) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(fixtures.get(fixture));
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

describe.skipIf(!hasChromium)(`the quota card in Chromium${hasChromium ? '' : ` (SKIPPED: ${CHROMIUM} is missing)`}`, { timeout: 30_000 }, () => {
  const svc = testService();
  const fixtures = new Map<string, string>();
  let browser: Browser | undefined;
  let card: { url: string; close: () => Promise<void> } | undefined;
  let host: { url: string; close: () => Promise<void> } | undefined;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];

  async function admin<T>(method: string, route: string, body: unknown): Promise<T> {
    const response = await svc.admin(method, route, body);
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  async function person(id: string, name: string, projectId: string | null): Promise<Person> {
    await admin('POST', '/admin/users', { id, name, projectId });
    const key = await admin<{ id: string; key: string }>('POST', '/admin/keys', { userId: id, name: 'lobechat' });
    return { secret: key.key, subject: { userId: id, projectId, keyId: key.id } };
  }

  let n = 0;
  const spend = (who: Person, tokens: number, costMicros = 0) =>
    svc.store.settle({
      holdId: `seed-${++n}`,
      subject: who.subject,
      usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });

  /** `GET /quota` with the person's own key, as the plugin would show it. */
  async function quotaOf(who: Person, fixture: string) {
    const response = await svc.as(who.secret, '/quota');
    expect(response.status).toBe(200);
    fixtures.set(fixture, await response.text());
  }

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    await admin('POST', '/admin/projects', { id: 'research', name: 'Research' });
    await admin('POST', '/admin/projects', { id: 'lab', name: 'Lab' });
    const budget = (scope: string, window: unknown, limits: { limitTokens?: number; limitUsd?: number }) =>
      admin('PUT', '/admin/budgets', { scope, window, ...limits });

    // normal: 42 % of a monthly budget in Shanghai, with 3,000 tokens held by a request in flight
    const alice = await person('alice', 'Alice', 'research');
    await budget('user:alice', { kind: 'month', timeZone: 'Asia/Shanghai' }, { limitTokens: 100_000 });
    await budget('project:research', { kind: 'day', timeZone: 'UTC' }, { limitUsd: 10 });
    await budget(`key:${alice.subject.keyId}`, { kind: 'rolling', hours: 5 }, { limitTokens: 200_000 });
    await spend(alice, 42_000, 1_200_000);
    await svc.store.reserve({ holdId: 'in-flight', subject: alice.subject, quote: { tokens: 3_000, micros: 0 }, now: T0, ttlMs: 3_600_000 });
    await quotaOf(alice, 'normal');

    // warning: 86.4 % of a week in Berlin (Monday starts at 00:00 CET, 11 h after T0)
    const bob = await person('bob', 'Bob', null);
    await budget('user:bob', { kind: 'week', timeZone: 'Europe/Berlin' }, { limitTokens: 50_000 });
    await spend(bob, 43_210);
    await quotaOf(bob, 'warning');

    // exceeded: 104.2 % of a day in Shanghai, plus a rolling key budget
    const carol = await person('carol', 'Carol', null);
    await budget('user:carol', { kind: 'day', timeZone: 'Asia/Shanghai' }, { limitTokens: 20_000 });
    await budget(`key:${carol.subject.keyId}`, { kind: 'rolling', hours: 5 }, { limitTokens: 50_000 });
    await spend(carol, 20_850);
    await quotaOf(carol, 'exceeded');

    // dollars: the project's daily $10 binds at 96 % (critical), the user's tokens barely used
    const dave = await person('dave', 'Dave', 'lab');
    await budget('project:lab', { kind: 'day', timeZone: 'UTC' }, { limitUsd: 10 });
    await budget('user:dave', { kind: 'month', timeZone: 'UTC' }, { limitTokens: 1_000_000 });
    await spend(dave, 12_345, 9_600_000);
    await quotaOf(dave, 'usd');

    // no budget at all
    await quotaOf(await person('erin', 'Erin', null), 'none');

    // held: requests in flight hold the whole monthly budget; nothing is spent yet
    const frank = await person('frank', 'Frank', null);
    await budget('user:frank', { kind: 'month', timeZone: 'UTC' }, { limitTokens: 50_000 });
    await budget(`key:${frank.subject.keyId}`, { kind: 'rolling', hours: 5 }, { limitTokens: 200_000 });
    await svc.store.reserve({ holdId: 'frank-in-flight', subject: frank.subject, quote: { tokens: 50_000, micros: 0 }, now: T0, ttlMs: 3_600_000 });
    await quotaOf(frank, 'held');

    // granted: a user at her daily limit, given 20,000 tokens more for the rest of the day
    const grace = await person('grace', 'Grace', null);
    const graceBudget = await admin<{ id: string }>('PUT', '/admin/budgets', { scope: 'user:grace', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 10_000 });
    await spend(grace, 10_000);
    await admin('POST', '/admin/grants', { budgetId: graceBudget.id, tokens: 20_000, reason: 'release week' });
    await quotaOf(grace, 'granted');

    // a name that is HTML
    const mallory = await person('mallory', '<img src=x onerror="window.pwned=1">Mal<b>lory</b>', null);
    await budget('user:mallory', { kind: 'day', timeZone: 'UTC' }, { limitTokens: 1_000 });
    await quotaOf(mallory, 'html');

    card = await listen(svc.app.fetch);
    host = await hostServer(fixtures);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await Promise.allSettled(contexts.map((c) => c.close()));
    await browser?.close();
    await card?.close();
    await host?.close();
  });

  interface Open {
    page: Page;
    frame: Frame;
    text: (selector: string) => Promise<string>;
  }

  /** Opens the host page on its own origin with the card in an iframe, and waits for the card to draw. */
  async function open(fixture: string, options: { dark?: boolean; locale?: string; w?: number; h?: number; as?: 'string'; answer?: 'fetch' | 'ready' } = {}): Promise<Open> {
    if (!browser || !card || !host) throw new Error('not started');
    const context = await browser.newContext({
      colorScheme: options.dark ? 'dark' : 'light',
      locale: options.locale ?? 'en-US',
      viewport: { width: (options.w ?? 800) + 40, height: (options.h ?? 280) + 40 },
      deviceScaleFactor: 2,
    });
    contexts.push(context);
    context.setDefaultTimeout(STEP);
    await context.clock.setFixedTime(T0); // the server's clock: countdowns are exact
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${fixture}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${fixture}: ${m.text()}`);
    });
    const query = new URLSearchParams({ card: `${card.url}/plugin/card.html`, fixture });
    for (const key of ['w', 'h', 'as', 'answer'] as const) if (options[key] !== undefined) query.set(key, String(options[key]));
    await page.goto(`${host.url}/card-host.html?${query}`);
    const frame = await (await page.waitForSelector('iframe#card')).contentFrame();
    if (!frame) throw new Error('no card frame');
    await frame.waitForSelector('.head', { state: 'attached' }); // not 'visible': a machine without fonts draws no text
    const text = async (selector: string) => ((await frame.locator(selector).first().textContent()) ?? '').trim();
    return { page, frame, text };
  }

  const shot = (frame: Frame, name: string) => frame.locator('#card').screenshot({ path: path.join(shots, name) });
  const colour = (frame: Frame, selector: string, property: 'backgroundColor' | 'color' = 'backgroundColor') =>
    frame.locator(selector).first().evaluate((e, p) => getComputedStyle(e)[p], property);

  it('draws a normal token budget: numbers, bar, remaining, reset in the budget zone and the other budgets', async () => {
    const { page, frame, text } = await open('normal');
    expect(await text('.title')).toBe('Quota · Alice');
    expect(await text('.badge')).toBe('Normal');
    expect(await frame.locator('#card').getAttribute('class')).toContain('status-normal');
    expect(await text('.scope')).toBe('Alice · monthly (Asia/Shanghai)');
    expect(await text('.figures')).toBe('42,000 / 100,000 tokens42%');
    expect(await text('.usage')).toBe('42,000');
    expect(await text('.pct')).toBe('42%');
    expect(await text('.remaining')).toBe('55,000 tokens left');
    expect(await text('.note')).toBe('3,000 tokens held by requests in flight');
    // 2026-12-01T00:00+08:00 is 8 d 4 h after T0, shown as Shanghai's wall clock
    expect(await text('.countdown')).toBe('Resets in 8 d 4 h 0 m');
    expect(await text('.reset time')).toBe('(Tue, Dec 1, 00:00 GMT+8)');
    expect(await frame.locator('.reset time').getAttribute('datetime')).toBe('2026-12-01T00:00:00+08:00');

    const main = frame.locator('.bar:not(.small)');
    expect(await main.getAttribute('role')).toBe('progressbar');
    expect(await main.getAttribute('aria-valuenow')).toBe('42');
    const [track, fill] = await Promise.all([main.boundingBox(), frame.locator('.bar:not(.small) .fill').boundingBox()]);
    expect((fill?.width ?? 0) / (track?.width ?? 1)).toBeCloseTo(0.42, 2);
    expect(await colour(frame, '.bar:not(.small) .fill')).toBe('rgb(26, 127, 55)');

    const rows = await frame.locator('.row').allTextContents();
    expect(rows).toEqual(['This key · rolling 5 h42,000 / 200,000 tokens · 21% · 3,000 held', 'Project research · daily (UTC)$1.20 / $10.00 · 12%']);
    expect(await frame.locator('.row [role=progressbar]').evaluateAll((bars) => bars.map((b) => b.getAttribute('aria-valuenow')))).toEqual(['21', '12']);
    expect(await page.evaluate(() => window.requests.slice(0, 2))).toEqual([
      'lobe-chat:fetch-plugin-message',
      'lobe-chat:plugin-ready-for-render',
    ]);
    // three budgets fit LobeChat's default iframe (800 × 280) without scrolling
    expect(await frame.evaluate(() => document.documentElement.scrollHeight)).toBeLessThanOrEqual(280);
    // what the page looks like where LobeChat puts it: dark text on a light background
    expect(await colour(frame, 'body')).toBe('rgb(255, 255, 255)');
    await shot(frame, 'card-normal.png');
  });

  it('says when the limit includes a grant, how much and by whom', async () => {
    const { frame, text } = await open('granted');
    expect(await text('.figures')).toBe('10,000 / 30,000 tokens33.3%');
    expect(await text('.note.granted')).toBe('Includes +20,000 tokens granted by an admin');
    await shot(frame, 'card-granted.png');
  });

  it('draws a warning in dark mode, and the countdown ticks every second', async () => {
    const { page, frame, text } = await open('warning', { dark: true });
    expect(await text('.badge')).toBe('Warning');
    expect(await text('.figures')).toBe('43,210 / 50,000 tokens86.4%');
    expect(await text('.remaining')).toBe('6,790 tokens left');
    expect(await text('.scope')).toBe('Bob · weekly (Europe/Berlin)');
    expect(await text('.countdown')).toBe('Resets in 11 h 00 m 00 s');
    expect(await text('.reset time')).toMatch(/^\(Mon, Nov 23, 00:00 (GMT\+1|CET)\)$/);
    expect(await frame.locator('.bar:not(.small)').getAttribute('aria-valuenow')).toBe('86.4');
    expect(await colour(frame, '.bar .fill')).toBe('rgb(210, 153, 34)');
    expect(await frame.locator('.others').count()).toBe(0);

    const [r, g, b] = (await colour(frame, 'body')).match(/\d+/g)!.map(Number);
    expect(0.2126 * r! + 0.7152 * g! + 0.0722 * b!).toBeLessThan(50); // a dark background
    const [tr, tg, tb] = (await colour(frame, '.title', 'color')).match(/\d+/g)!.map(Number);
    expect(0.2126 * tr! + 0.7152 * tg! + 0.0722 * tb!).toBeGreaterThan(180); // and light text
    await shot(frame, 'card-warning-dark.png');

    await page.context().clock.setFixedTime(T0 + 1_000);
    await frame.waitForFunction(() => document.querySelector('.countdown')?.textContent === 'Resets in 10 h 59 m 59 s', undefined, { timeout: 3_000 });
  });

  it('speaks Chinese and shows an exceeded budget with a full red bar', async () => {
    const { frame, text } = await open('exceeded', { locale: 'zh-CN' });
    expect(await frame.evaluate(() => document.documentElement.lang)).toBe('zh-CN');
    expect(await text('.title')).toBe('额度 · Carol');
    expect(await text('.badge')).toBe('已超额');
    expect(await text('.scope')).toBe('Carol · 每日 (Asia/Shanghai)');
    expect(await text('.figures')).toBe('20,850 / 20,000 tokens104.2%');
    expect(await text('.remaining')).toBe('剩余 0 tokens');
    expect(await text('.countdown')).toBe('4 小时 00 分 00 秒后重置');
    expect(await text('.reset time')).toContain('11月23日');
    expect(await text('.others h2')).toBe('其他预算');
    expect(await frame.locator('.row').allTextContents()).toEqual(['此密钥 · 滚动 5 小时20,850 / 50,000 tokens · 41.7%']);
    const main = frame.locator('.bar:not(.small)');
    expect(await main.getAttribute('aria-valuenow')).toBe('100');
    const [track, fill] = await Promise.all([main.boundingBox(), frame.locator('.bar:not(.small) .fill').boundingBox()]);
    expect(fill?.width).toBeCloseTo(track?.width ?? 0, 0);
    expect(await frame.locator('#card').getAttribute('class')).toContain('status-exceeded');
    expect(await colour(frame, '.bar:not(.small) .fill')).toBe('rgb(207, 34, 46)');
    await shot(frame, 'card-exceeded-zh.png');
  });

  it('shows a dollar budget, from content sent as JSON text and pushed on ready only', async () => {
    const { frame, text } = await open('usd', { as: 'string', answer: 'ready' });
    expect(await text('.badge')).toBe('Critical');
    expect(await text('.scope')).toBe('Project lab · daily (UTC)');
    expect(await text('.figures')).toBe('$9.60 / $10.0096%');
    expect(await text('.remaining')).toBe('$0.40 left');
    expect(await text('.countdown')).toBe('Resets in 12 h 00 m 00 s');
    expect(await text('.reset time')).toBe('(Mon, Nov 23, 00:00 UTC)');
    expect(await colour(frame, '.bar:not(.small) .fill')).toBe('rgb(209, 73, 15)');
    expect(await frame.locator('.row').allTextContents()).toEqual(['Dave · monthly (UTC)12,345 / 1,000,000 tokens · 1.2%']);
    await shot(frame, 'card-usd.png');
  });

  it('fits 320 px without horizontal scrolling', async () => {
    const { frame } = await open('normal', { w: 320, h: 330 });
    const size = await frame.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(size.client).toBe(320);
    expect(size.scroll).toBeLessThanOrEqual(size.client);
    for (const selector of ['.figures', '.facts', '.row-line']) {
      const box = await frame.locator(selector).first().boundingBox();
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(320);
    }
    await shot(frame, 'card-320.png');
  });

  it.each<[string, Record<string, string>]>([
    ['en-US', { badge: 'Critical', remaining: '0 tokens left', note: '50,000 tokens held by requests in flight', row: 'This key · rolling 5 h0 / 200,000 tokens · 0% · 50,000 held' }],
    ['zh-CN', { badge: '即将用完', remaining: '剩余 0 tokens', note: '另有 50,000 tokens 被进行中的请求占用', row: '此密钥 · 滚动 5 小时0 / 200,000 tokens · 0% · 占用 50,000' }],
  ])('says a budget held whole by requests in flight is critical, and how much is held (%s)', async (locale, want) => {
    const { frame, text } = await open('held', { locale });
    expect(await text('.badge')).toBe(want.badge);
    expect(await text('.figures')).toBe('0 / 50,000 tokens0%');
    expect(await text('.remaining')).toBe(want.remaining);
    expect(await text('.note')).toBe(want.note);
    expect(await frame.locator('.row').allTextContents()).toEqual([want.row]);
    expect(await colour(frame, '.bar:not(.small) .fill')).toBe('rgb(209, 73, 15)');
  });

  it('says so when no budget applies', async () => {
    const { frame, text } = await open('none');
    expect(await text('.title')).toBe('Quota · Erin');
    expect(await text('.empty')).toBe('No budget applies to Erin, so usage is not limited.');
    await shot(frame, 'card-none.png');
  });

  it('ignores render messages that do not come from its parent', async () => {
    const { page, frame, text } = await open('normal');
    await frame.evaluate(() => {
      window.evil = 0;
      // Registered after the card's own listener, so it runs after the card has handled each message.
      window.addEventListener('message', (e) => {
        if ((e.data as { evil?: boolean } | null)?.evil) window.evil += 1;
      });
    });
    const forged = { type: 'lobe-chat:render-plugin', evil: true, props: { content: { ...JSON.parse(fixtures.get('normal') ?? '{}'), subject: { kind: 'user', id: 'x', name: 'EVIL' } } } };
    const sibling = await (await page.waitForSelector('iframe#sibling', { state: 'attached' })).contentFrame();
    if (!sibling) throw new Error('no sibling frame');
    // a sibling frame on the host's own origin, then the card itself
    await sibling.evaluate((message) => window.parent.document.getElementById('card')?.contentWindow?.postMessage(message, '*'), forged);
    await frame.evaluate((message) => window.postMessage(message, '*'), forged);
    await frame.waitForFunction(() => window.evil === 2);
    expect(await text('.title')).toBe('Quota · Alice');

    // while the parent still can re-render
    await page.evaluate((content) => window.renderCard(content), fixtures.get('warning'));
    await frame.waitForFunction(() => document.querySelector('.title')?.textContent === 'Quota · Bob');
  });

  it('shows HTML in a name as text', async () => {
    const { frame, text } = await open('html');
    expect(await text('.title')).toBe('Quota · <img src=x onerror="window.pwned=1">Mal<b>lory</b>');
    expect(await frame.locator('#card img, #card b').count()).toBe(0);
    expect(await frame.evaluate(() => 'pwned' in window)).toBe(false);
  });

  it('logged no script errors, CSP violations or warnings', () => {
    expect(errors).toEqual([]);
  });
});
