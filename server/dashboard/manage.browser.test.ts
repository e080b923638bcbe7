import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestSubject } from '../quota/scope.js';
import { ADMIN_TOKEN, T0, listen, testService } from '../testing/harness.js';
import { fitsWidth, focused, hasChromium, inputValues, launchChromium, openPage, shots, storedText, type WatchedPage } from './browser-harness.js';

/**
 * Managing from /admin in a real (headless) Chromium against the real server: people, keys (the
 * secret once), budgets (in Asia/Shanghai, by mouse and by keyboard only), holds and alerts, every
 * change through the admin API, with errors next to their fields and a confirmation before what
 * cannot be undone.
 */
const DAY = 86_400_000;

/** The browser logs each API answer of 4xx it got; a test that provokes them expects exactly those. */
const besides4xx = (errors: string[]) => errors.filter((e) => !/the server responded with a status of 4\d\d/.test(e));

interface Budget { id: string; scope: string; window: { kind: string; timeZone?: string; hours?: number }; limitTokens: number | null; limitUsd: number | null; thresholds: number[]; onLimit: string; fallback: Array<{ at: number; to: string }> }
interface Key { id: string; userId: string; name: string; prefix: string; service: boolean; refusalStyle: string | null; revokedAt: string | null }
interface Alert { id: string; deliveries: Array<{ channel: string; state: string; nextAttemptAt: string | null; lastError: string | null }> }

describe.skipIf(!hasChromium)('managing from the dashboard in Chromium', { timeout: 60_000 }, () => {
  const svc = testService({
    defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000_000, limitUsd: null, onLimit: 'reject' }],
    alerts: { channelsFor: () => ['ops-webhook'], projection: false },
  });
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  const subjects: Record<string, RequestSubject> = {};
  let aliceKey = '';

  async function admin<T>(method: string, route: string, body?: unknown): Promise<T> {
    const response = await svc.admin(method, route, body);
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }
  const budgets = async () => (await admin<{ budgets: Budget[] }>('GET', '/admin/budgets')).budgets;
  const keys = async () => (await admin<{ keys: Key[] }>('GET', '/admin/keys')).keys;

  beforeAll(async () => {
    await admin('POST', '/admin/projects', { id: 'research', name: 'Research' });
    await admin('POST', '/admin/projects', { id: 'lab', name: 'Lab' });
    for (const [id, name, projectId] of [['alice', 'Alice', 'research'], ['bob', 'Bob', 'lab']] as const) {
      await admin('POST', '/admin/users', { id, name, projectId });
      const key = await admin<{ id: string; key: string }>('POST', '/admin/keys', { userId: id, name: 'lobechat' });
      subjects[id] = { userId: id, projectId, keyId: key.id };
      if (id === 'alice') aliceKey = key.key;
    }
    await admin('POST', '/admin/users/bob/external-ids', { externalId: 'user_2bobXYZ' });
    await admin('PUT', '/admin/budgets', { scope: 'project:research', window: { kind: 'month', timeZone: 'UTC' }, limitUsd: 50 });
    // Bob's usage crosses 50 % of his default budget: an alert whose delivery failed and waits.
    await svc.store.settle({
      holdId: 'seed-1',
      subject: subjects.bob!,
      usage: { model: 'gpt-4o', inputTokens: 500_000, outputTokens: 20_000, cachedTokens: 0, reasoningTokens: 0, costMicros: 2_000_000, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: T0 - DAY,
    });
    const [alert] = await svc.store.listAlerts({ limit: 1 });
    await svc.store.markDeliveryFailed(alert!.alert.id, 'ops-webhook', 'HTTP 503 from hooks.example.com', T0 + 3_600_000);
    // A request of alice's that never ended (its process hung): its hold outlives it.
    await svc.store.reserve({ holdId: 'req_stuck', subject: subjects.alice!, quote: { tokens: 40_000, micros: 0 }, now: T0, ttlMs: 3_600_000 });
    server = await listen(svc.app.fetch);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signedIn(hash = '', options: { width?: number; dark?: boolean } = {}): Promise<WatchedPage> {
    if (!browser || !server) throw new Error('not started');
    const watched = await openPage(browser, `${server.url}/admin${hash}`, options);
    await watched.page.fill('#token', ADMIN_TOKEN);
    await watched.page.click('#login button[type=submit]');
    await watched.page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    return watched;
  }

  /** Confirms in the page's dialog (after checking it says what it will do). */
  async function confirm(page: Page, expected: RegExp) {
    await page.waitForSelector('#confirm-dialog[open]');
    expect(await page.textContent('#confirm-dialog')).toMatch(expected);
    await page.click('#confirm-ok');
    await page.waitForSelector('#confirm-dialog:not([open])', { state: 'attached' });
  }

  it('creates a project and a user, shows an API error next to the field it names, renames and moves the user', async () => {
    const { page, errors } = await signedIn('#people');
    await page.fill('#new-project-id', 'design');
    await page.fill('#new-project-name', 'Design');
    await page.click('#new-project-form button[type=submit]');
    await page.waitForSelector('#projects-table tr[data-project="design"]');

    // A taken id: the API's 409 names `id`, and the page puts it under the Id field.
    await page.fill('#new-user-id', 'alice');
    await page.click('#new-user-form button[type=submit]');
    await page.waitForSelector('#new-user-id-error:not([hidden])');
    expect(await page.textContent('#new-user-id-error')).toBe('user "alice" already exists');
    expect(await page.getAttribute('#new-user-id', 'aria-invalid')).toBe('true');
    expect(await page.getAttribute('#new-user-id', 'aria-describedby')).toContain('new-user-id-error');
    expect(await focused(page)).toMatchObject({ id: 'new-user-id', label: 'Id' });

    await page.fill('#new-user-id', 'carol');
    await page.fill('#new-user-name', 'Carol');
    await page.selectOption('#new-user-project', 'design');
    await page.fill('#new-user-external-ids', 'user_2carolXYZ');
    await page.click('#new-user-form button[type=submit]');
    await page.waitForSelector('#users tr[data-user="carol"]');
    expect(await page.getAttribute('#new-user-id', 'aria-invalid')).toBeNull();
    expect(await page.textContent('#new-user-form .form-status')).toBe('Created the user Carol (carol).');
    expect(await svc.store.getUser('carol')).toMatchObject({ name: 'Carol', projectId: 'design', externalIds: ['user_2carolXYZ'] });

    await page.click('#users tr[data-user="carol"] a[aria-label="Manage Carol (carol)"]');
    await page.waitForSelector('#user-panel:not([hidden])');
    expect(page.url()).toMatch(/#people\/carol$/);
    expect(await page.textContent('#user-title')).toBe('Carol (carol)');
    await page.fill('#user-name', 'Carol Danvers');
    await page.click('#user-rename-form button[type=submit]');
    await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('user-title').textContent === 'Carol Danvers (carol)');
    await page.selectOption('#user-project', 'lab');
    await page.click('#user-move-form button[type=submit]');
    await page.waitForSelector('#users tr[data-user="carol"] td:nth-child(2):text-is("lab")');
    expect(await svc.store.getUser('carol')).toMatchObject({ name: 'Carol Danvers', projectId: 'lab' });
    // Linking an id another user holds: the 409 goes next to the field.
    await page.fill('#user-external-id', 'user_2bobXYZ');
    await page.click('#user-link-form button[type=submit]');
    await page.waitForSelector('#user-external-id-error:not([hidden])');
    expect(await page.textContent('#user-external-id-error')).toMatch(/^"user_2bobXYZ" is linked to user "bob"; unlink it there first/);
    await page.fill('#user-external-id', 'user_2carolABC');
    await page.click('#user-link-form button[type=submit]');
    await page.waitForSelector('#user-external-ids li[data-id="user_2carolABC"]');
    expect((await svc.store.getUser('carol'))?.externalIds).toEqual(['user_2carolABC', 'user_2carolXYZ']);
    await page.click('#user-external-ids li[data-id="user_2carolXYZ"] button:text-is("Unlink")');
    await confirm(page, /no longer be charged to Carol Danvers \(carol\)/);
    await page.waitForSelector('#user-external-ids li[data-id="user_2carolXYZ"]', { state: 'detached' });
    expect((await svc.store.getUser('carol'))?.externalIds).toEqual(['user_2carolABC']);
    expect(besides4xx(errors)).toEqual([]);
    expect(errors).toHaveLength(2); // the refusals this test provoked
    await page.context().close();
  });

  it('creates a key whose secret appears once, with a copy button, and never again after navigating or reloading', async () => {
    const { page, context, requests, errors } = await signedIn('#keys');
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server!.url });
    await page.selectOption('#key-user', 'alice');
    await page.fill('#key-name', 'laptop');
    await page.selectOption('#key-refusal', 'answer');
    await page.click('#new-key-form button[type=submit]');
    await page.waitForSelector('#new-secret:not([hidden])');
    const secret = await page.inputValue('#new-secret-value');
    expect(secret).toMatch(/^lq-/);
    expect(await focused(page)).toMatchObject({ id: 'copy-secret' });
    const created = (await keys()).find((k) => k.name === 'laptop');
    expect(created).toMatchObject({ userId: 'alice', refusalStyle: 'answer', service: false, revokedAt: null });
    expect(secret.startsWith(created!.prefix)).toBe(true);
    expect((await svc.as(secret, '/quota')).status).toBe(200);

    await page.click('#copy-secret');
    await page.waitForSelector('#copy-status:text("Copied to the clipboard.")');
    expect(await page.evaluate(() => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText())).toBe(secret);

    // Listed by its prefix only; kept nowhere but that one field.
    const listed = await page.textContent(`#keys-table tr[data-key="${created!.id}"]`);
    expect(listed).toContain(`${created!.prefix}…`);
    expect(listed).not.toContain(secret);
    const stored = await storedText(page);
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(stored.local).toBe('');
    expect(stored.cookie).toBe('');

    // Another view and back: gone.
    await page.click('#views a[data-view="people"]');
    await page.click('#views a[data-view="keys"]');
    expect(await page.locator('#new-secret').isHidden()).toBe(true);
    expect(await inputValues(page)).not.toContain(secret);
    expect(await page.content()).not.toContain(secret);

    // Another one, then a reload: still signed in (the token is in sessionStorage), the secret gone.
    await page.selectOption('#key-user', 'bob');
    await page.click('#new-key-form button[type=submit]');
    await page.waitForSelector('#new-secret:not([hidden])');
    const second = await page.inputValue('#new-secret-value');
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    expect(await page.locator('#new-secret').isHidden()).toBe(true);
    expect((await inputValues(page)).some((v) => v.includes(second) || v.includes(secret))).toBe(false);
    expect(await page.content()).not.toContain(second);

    // The admin token went in the Authorization header of each API call, never in a URL.
    expect(requests.some((r) => r.url.includes(ADMIN_TOKEN) || r.url.includes(secret))).toBe(false);
    const apiCalls = requests.filter((r) => /\/(admin\/(?!.*\.(js|css)$)|quota|metrics)/.test(new URL(r.url).pathname) && new URL(r.url).pathname !== '/admin');
    expect(apiCalls.length).toBeGreaterThan(10);
    expect(apiCalls.every((r) => r.authorization === `Bearer ${ADMIN_TOKEN}`)).toBe(true);
    expect((await storedText(page)).local).toBe('');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('revokes a key after a confirmation, and not when it is cancelled', async () => {
    const { page, errors } = await signedIn('#keys');
    const id = subjects.alice!.keyId;
    const revoke = `#keys-table tr[data-key="${id}"] button:text-is("Revoke")`;
    await page.click(revoke);
    await page.waitForSelector('#confirm-dialog[open]');
    expect(await focused(page)).toMatchObject({ id: 'confirm-cancel' });
    await page.keyboard.press('Escape');
    await page.waitForSelector('#confirm-dialog:not([open])', { state: 'attached' });
    expect((await keys()).find((k) => k.id === id)?.revokedAt).toBeNull();

    await page.click(revoke);
    await confirm(page, /The key lobechat \(lq-[\w-]+…\) of Alice \(alice\) stops working at once/);
    await page.waitForSelector(`#keys-table tr[data-key="${id}"]`, { state: 'detached' });
    expect((await keys()).find((k) => k.id === id)?.revokedAt).toBe(new Date(T0).toISOString());
    expect((await svc.as(aliceKey, '/quota')).status).toBe(401);
    await page.check('#show-revoked');
    expect(await page.textContent(`#keys-table tr[data-key="${id}"]`)).toContain('revoked');
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('creates a budget in Asia/Shanghai from the lists, shows the API’s errors by their fields, edits and deletes it', async () => {
    const { page, errors } = await signedIn('#budgets');
    // No limit at all: the API's 400 names limitTokens.
    await page.selectOption('#b-kind', 'user');
    await page.selectOption('#b-subject', 'alice');
    await page.click('#b-submit');
    await page.waitForSelector('#b-tokens-error:not([hidden])');
    expect(await page.textContent('#b-tokens-error')).toBe('a budget needs limitTokens or limitUsd (or both)');

    await page.selectOption('#b-window', 'day');
    await page.selectOption('#b-tz', 'Asia/Shanghai');
    await page.fill('#b-tokens', '200000');
    await page.fill('#b-thresholds', '50, 80, 100');
    await page.fill('#b-models', 'gpt-5*');
    await page.click('#b-add-rule');
    await page.fill('#b-rule-at-0', '90');
    await page.fill('#b-rule-to-0', 'gpt-5*');
    await page.click('#b-submit');
    // A glob as a fallback target: the error goes next to that rule's model field.
    await page.waitForSelector('#b-rule-to-0-error:not([hidden])');
    expect(await page.textContent('#b-rule-to-0-error')).toBe('must be one model id, not a glob');
    await page.fill('#b-rule-to-0', 'gpt-5-mini');
    await page.click('#b-submit');
    await page.waitForSelector('#budget-form .form-status:text("Created the budget")');
    expect(await page.textContent('#budget-form .form-status')).toBe('Created the budget user:alice · daily (Asia/Shanghai) · 200,000 tokens.');
    const made = (await budgets()).find((b) => b.scope === 'user:alice');
    expect(made).toMatchObject({ window: { kind: 'day', timeZone: 'Asia/Shanghai' }, limitTokens: 200_000, limitUsd: null, thresholds: [50, 80, 100], onLimit: 'reject', fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    const line = `#budget-table tr[data-id="${made!.id}"]`;
    expect(await page.textContent(line)).toContain('daily (Asia/Shanghai)');

    // Edit: the form is filled from the budget; the PUT replaces it.
    await page.click(`${line} button:text-is("Edit")`);
    expect(await page.inputValue('#b-tz')).toBe('Asia/Shanghai');
    expect(await page.inputValue('#b-rule-to-0')).toBe('gpt-5-mini');
    await page.fill('#b-tokens', '250000');
    await page.fill('#b-usd', '12.5');
    await page.click('#b-submit');
    await page.waitForSelector('#budget-form .form-status:text("Replaced the budget")');
    expect((await budgets()).find((b) => b.id === made!.id)).toMatchObject({ limitTokens: 250_000, limitUsd: 12.5, window: { timeZone: 'Asia/Shanghai' } });

    await page.click(`${line} button:text-is("Delete")`);
    await confirm(page, /user:alice · daily \(Asia\/Shanghai\) · 250,000 tokens · \$12\.50/);
    await page.waitForSelector(line, { state: 'detached' });
    expect((await budgets()).some((b) => b.id === made!.id)).toBe(false);
    expect(besides4xx(errors)).toEqual([]);
    expect(errors).toHaveLength(2); // the refusals this test provoked
    await page.context().close();
  });

  it('walks the create-budget form by keyboard alone, with every field labelled', async () => {
    const { page, errors } = await signedIn();
    // To the Budgets section by Tab and Enter.
    for (let i = 0; i < 12 && (await focused(page)).label !== 'Budgets'; i++) await page.keyboard.press('Tab');
    expect(await focused(page)).toMatchObject({ label: 'Budgets' });
    await page.keyboard.press('Enter');
    await page.waitForSelector('#view-budgets:not([hidden])');
    expect(await focused(page)).toMatchObject({ id: 'budget-form-title' });

    const steps: Array<[string, string, () => Promise<void>]> = [
      ['b-kind', 'Scope', () => page.keyboard.press('ArrowDown')], // User → Key
      ['b-subject', 'Key', async () => undefined],
      ['b-window', 'Resets', async () => { await page.keyboard.press('ArrowUp'); await page.keyboard.press('ArrowUp'); }], // month → day
      ['b-tz', 'Time zone', () => page.keyboard.type('Asia/Shanghai')],
      ['b-tokens', 'Tokens', async () => undefined], // left empty: the API will say so
      ['b-usd', 'US dollars', async () => undefined],
      ['b-thresholds', 'Alert thresholds (%)', () => page.keyboard.type('50, 90')],
      ['b-models', 'Models', async () => undefined],
      ['b-onlimit', 'At the limit', () => page.keyboard.press('ArrowDown')], // reject → downgrade
      ['b-downgrade', 'Downgrade to', () => page.keyboard.type('gpt-4o-mini')],
      ['b-add-rule', 'Add a fallback rule', async () => undefined],
      ['b-submit', 'Save budget', () => page.keyboard.press('Enter')],
    ];
    for (const [id, label, act] of steps) {
      await page.keyboard.press('Tab');
      expect(await focused(page)).toEqual({ id, label });
      await act();
    }
    // The API refused it for want of a limit: the error is by the field, and the focus is on it.
    await page.waitForSelector('#b-tokens-error:not([hidden])');
    expect(await focused(page)).toEqual({ id: 'b-tokens', label: 'Tokens' });
    await page.keyboard.type('30000');
    await page.keyboard.press('Enter'); // submits the form from the field
    await page.waitForSelector('#budget-form .form-status:text("Created the budget")');
    const made = (await budgets()).find((b) => b.scope.startsWith('key:'));
    expect(made).toMatchObject({ window: { kind: 'day', timeZone: 'Asia/Shanghai' }, limitTokens: 30_000, thresholds: [50, 90], onLimit: 'downgrade' });
    expect(besides4xx(errors)).toEqual([]);
    expect(errors).toHaveLength(1); // the refusals this test provoked
    await page.context().close();
  });

  it('releases a hold after a confirmation', async () => {
    const { page, errors } = await signedIn('#holds');
    const line = '#holds-table tr[data-hold="req_stuck"]';
    expect(await page.textContent(line)).toContain('40,000 tokens');
    await page.click(`${line} button:text-is("Release")`);
    await confirm(page, /What hold req_stuck of Alice \(alice\) sets aside \(40,000 tokens, \$0\.00\) is free again at once/);
    await page.waitForSelector(line, { state: 'detached' });
    expect(await svc.store.listHolds()).toEqual([]);
    expect(await page.textContent('#holds-panel .form-status')).toBe('Released hold req_stuck.');
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('filters alerts, shows their delivery state, and retries a pending one now', async () => {
    const { page, errors } = await signedIn('#alerts');
    await page.waitForSelector('#alert-list li.m-alert');
    await page.selectOption('#af-state', 'pending');
    await page.click('#alert-filter button[type=submit]');
    await page.waitForSelector('#alert-count:text("1 alert, newest first.")');
    const item = '#alert-list li.m-alert';
    expect(await page.textContent(item)).toContain('HTTP 503 from hooks.example.com');
    expect(await page.textContent(`${item} .deliveries`)).toContain('pending');
    await page.click(`${item} button:text-is("Retry now")`);
    await page.waitForSelector(`${item} .form-status:text("Retrying 1 delivery now.")`);
    const [alert] = (await admin<{ alerts: Alert[] }>('GET', '/admin/alerts?state=pending')).alerts;
    expect(alert?.deliveries[0]).toMatchObject({ channel: 'ops-webhook', state: 'pending', nextAttemptAt: new Date(T0).toISOString() });
    // A bad filter: the 400 names the field.
    await page.fill('#af-scope', '');
    await page.fill('#af-limit', '5000');
    await page.click('#alert-filter button[type=submit]');
    await page.waitForSelector('#af-limit-error:not([hidden])');
    expect(await page.textContent('#af-limit-error')).toMatch(/1000/);
    expect(besides4xx(errors)).toEqual([]);
    expect(errors).toHaveLength(1); // the refusals this test provoked
    await page.context().close();
  });

  it('fits a 320 px phone in every view, and the budget form shows there', async () => {
    const { page, errors } = await signedIn('', { width: 320 });
    for (const view of ['overview', 'people', 'keys', 'budgets', 'holds', 'alerts']) {
      await page.click(`#views a[data-view="${view}"]`);
      await page.waitForSelector(`#view-${view}:not([hidden])`);
      const size = await fitsWidth(page);
      expect(size.client, view).toBe(320);
      expect(size.scroll, view).toBeLessThanOrEqual(320);
    }
    await page.click('#views a[data-view="budgets"]');
    await page.screenshot({ path: path.join(shots, 'dashboard-manage-320.png'), fullPage: true });
    await page.click('#views a[data-view="people"]');
    await page.screenshot({ path: path.join(shots, 'dashboard-people-320.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('lists on a user’s page the budgets that apply to them, a config default only while nothing replaces it', async () => {
    const { page, errors } = await signedIn('#people/carol');
    const applying = () => page.locator('#user-budgets li').allTextContents();
    await page.waitForSelector('#user-panel:not([hidden])');
    expect(await applying()).toEqual(['every user (config default) · monthly (UTC) · 1,000,000 tokens']);
    const override = await admin<Budget>('PUT', '/admin/budgets', { scope: 'user:carol', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 700_000 });
    await page.click('#refresh');
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }).document.querySelectorAll('#user-budgets li.user-budget[data-id]').length === 1);
    expect(await applying()).toEqual(['user:carol · monthly (Asia/Shanghai) · 700,000 tokens']);
    await admin('DELETE', `/admin/budgets/${override.id}`);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('draws the management views for the README', async () => {
    const { page } = await signedIn('#people/alice');
    await page.waitForSelector('#user-panel:not([hidden])');
    await page.screenshot({ path: path.join(shots, 'dashboard-people.png'), fullPage: true });
    await page.click('#views a[data-view="budgets"]');
    await page.selectOption('#b-subject', 'bob');
    await page.selectOption('#b-window', 'day');
    await page.selectOption('#b-tz', 'Asia/Shanghai');
    await page.fill('#b-tokens', '200000');
    await page.fill('#b-thresholds', '50, 80, 100');
    await page.click('#b-add-rule');
    await page.fill('#b-rule-at-0', '90');
    await page.fill('#b-rule-to-0', 'gpt-4o-mini');
    await page.screenshot({ path: path.join(shots, 'dashboard-budgets.png'), fullPage: true });
    await page.click('#views a[data-view="keys"]');
    await page.selectOption('#key-user', 'bob');
    await page.fill('#key-name', 'tablet');
    await page.click('#new-key-form button[type=submit]');
    await page.waitForSelector('#new-secret:not([hidden])');
    await page.screenshot({ path: path.join(shots, 'dashboard-keys.png'), fullPage: true });
    await page.click('#views a[data-view="alerts"]');
    await page.waitForSelector('#alert-list li.m-alert');
    await page.screenshot({ path: path.join(shots, 'dashboard-alerts.png'), fullPage: true });
    await page.context().close();
  });
});
