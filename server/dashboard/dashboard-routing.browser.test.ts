import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, T0, listen, testService, userWithKey } from '../testing/harness.js';

/**
 * The dashboard shows the budgets routing works with: a provider account's own budget (scope
 * upstream:NAME), and a budget of some models with its fallback rules, in a real headless Chromium.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);

declare const document: { querySelectorAll(selector: string): ArrayLike<{ dataset: Record<string, string>; textContent: string | null }> };

describe.skipIf(!hasChromium)('the dashboard with upstream budgets, fallback rules and grants', { timeout: 60_000 }, () => {
  const svc = testService({ config: { upstreams: [{ name: 'plan-a', baseUrl: 'http://127.0.0.1:9/v1', apiKey: undefined, models: ['*'] }] } });
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;

  beforeAll(async () => {
    const put = async (body: object) => {
      const response = await svc.admin('PUT', '/admin/budgets', body);
      if (!response.ok) throw new Error(await response.text());
    };
    const { subject } = await userWithKey(svc.store, 'alice');
    await put({ scope: 'upstream:plan-a', window: { kind: 'rolling', hours: 1 }, limitTokens: 1_200 });
    await put({ scope: 'user:alice', window: { kind: 'day', timeZone: 'UTC' }, limitUsd: 5, models: ['gpt-5*'], fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    await put({ scope: 'user:alice', window: { kind: 'week', timeZone: 'UTC' }, limitTokens: 10_000 });
    const week = (await svc.store.listBudgets()).find((b) => b.window.kind === 'week');
    const grant = await svc.admin('POST', '/admin/grants', { budgetId: week?.id, tokens: 5_000, reason: 'release week' });
    if (grant.status !== 201) throw new Error(await grant.text());
    const usage = { model: 'gpt-5', upstream: 'plan-a', inputTokens: 300, outputTokens: 300, cachedTokens: 0, reasoningTokens: 0, costMicros: 4_000_000 };
    await svc.store.settle({ holdId: 'seed', subject, usage: { ...usage, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} }, now: T0 });
    server = await listen(svc.app.fetch);
    browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('lists the upstream budget by its account, the model budget with its models and rules, and a grant', async () => {
    if (!browser || !server) throw new Error('not started');
    const page = await browser.newPage();
    await page.goto(`${server.url}/admin`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' });
    const budgets = await page.evaluate(() => Array.from(document.querySelectorAll('#budgets li.budget')).map((li) => [li.dataset.scope, li.textContent]));
    const text = Object.fromEntries(budgets.filter(([, t]) => !t?.includes('weekly'))) as Record<string, string>;
    const weekly = budgets.find(([, t]) => t?.includes('weekly'))?.[1] ?? '';
    expect(weekly).toContain('600 / 15,000 tokens');
    expect(weekly).toContain('Limit includes +5,000 tokens granted');
    expect(text['upstream:plan-a']).toContain('Upstream plan-a');
    expect(text['upstream:plan-a']).toContain('600 / 1,200 tokens');
    expect(text['user:alice']).toContain('gpt-5*');
    expect(text['user:alice']).toContain('Routes at 90 % → gpt-5-mini');
    expect(text['user:alice']).toContain('80%');
    await page.close();
  });
});
