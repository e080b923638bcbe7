import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * What the web console's browser tests share: Debian's Chromium (the tests are skipped, saying so,
 * where it is missing), pages that record every script error, CSP violation and request, and where
 * screenshots go (test-results/screenshots, or docs/screenshots with UPDATE_SCREENSHOTS=1).
 */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const shots = process.env.UPDATE_SCREENSHOTS ? path.join(root, 'docs', 'screenshots') : path.join(root, 'test-results', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  mkdirSync(shots, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Script errors, console errors and warnings (CSP violations among them). */
  errors: string[];
  /** Every request the page made: its URL and Authorization header. */
  requests: Array<{ url: string; authorization: string | undefined }>;
}

export async function openPage(
  browser: Browser,
  url: string,
  options: { width?: number; height?: number; dark?: boolean; timeZone?: string; now?: number } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    colorScheme: options.dark ? 'dark' : 'light',
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: options.timeZone ?? 'UTC',
  });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  // The server's clock is fixed in tests: the browser's too, so a countdown counts to its resets.
  if (options.now !== undefined) await page.clock.setFixedTime(options.now);
  const errors: string[] = [];
  const requests: WatchedPage['requests'] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
  });
  page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }));
  const response = await page.goto(url);
  if (response?.status() !== 200) throw new Error(`GET ${url}: ${response?.status()}`);
  return { page, context, errors, requests };
}

// These files are typed for Node (no DOM lib): the browser globals their page callbacks use.
export interface BrowserElement {
  id: string;
  value: string;
  textContent: string | null;
  dataset: Record<string, string>;
  labels?: ArrayLike<{ textContent: string | null }> | null;
  getAttribute(name: string): string | null;
}
export interface BrowserDocument {
  activeElement: BrowserElement | null;
  documentElement: { scrollWidth: number; clientWidth: number; outerHTML: string };
  body: { textContent: string | null };
  cookie: string;
  querySelectorAll(selector: string): ArrayLike<BrowserElement>;
  querySelector(selector: string): BrowserElement | null;
}
export interface BrowserStorage {
  length: number;
  key(i: number): string | null;
  getItem(key: string): string | null;
}

/** Whether the page is no wider than its window (nothing to scroll sideways). */
export const fitsWidth = (page: Page) =>
  page.evaluate(() => {
    const doc = (globalThis as unknown as { document: BrowserDocument }).document;
    return { scroll: doc.documentElement.scrollWidth, client: doc.documentElement.clientWidth };
  });

/** Everything the page keeps in web storage and cookies, as one text. */
export const storedText = (page: Page) =>
  page.evaluate(() => {
    const g = globalThis as unknown as { document: BrowserDocument; localStorage: BrowserStorage; sessionStorage: BrowserStorage };
    const dump = (s: BrowserStorage) => Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i) ?? '')}`).join('\n');
    return { local: dump(g.localStorage), session: dump(g.sessionStorage), cookie: g.document.cookie };
  });

/** The values of every input on the page (not in its HTML: a typed or set value is a property). */
export const inputValues = (page: Page) =>
  page.evaluate(() => Array.from((globalThis as unknown as { document: BrowserDocument }).document.querySelectorAll('input, textarea, select'), (i) => i.value));

/** The id and label of the focused element. */
export const focused = (page: Page) =>
  page.evaluate(() => {
    const active = (globalThis as unknown as { document: BrowserDocument }).document.activeElement;
    return { id: active?.id ?? '', label: active?.labels?.[0]?.textContent?.trim() ?? active?.getAttribute('aria-label') ?? active?.textContent?.trim() ?? '' };
  });
