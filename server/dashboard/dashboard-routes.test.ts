import { describe, expect, it } from 'vitest';
import { T0, testService, userWithKey } from '../testing/harness.js';
import { DASHBOARD_CSP } from './dashboard-routes.js';

const PAGE_FILES = ['/admin', '/admin/dashboard.js', '/admin/dashboard.css', '/admin/vendor/uPlot.iife.min.js', '/admin/vendor/uPlot.min.css'];

describe('dashboard routes', () => {
  it('serves the page and its files without a token, the page under a strict CSP', async () => {
    const svc = testService();
    for (const path of PAGE_FILES) {
      const response = await svc.app.request(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect((await response.text()).length).toBeGreaterThan(100);
    }
    const page = await svc.app.request('/admin');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<style>|\son\w+=/); // no inline code
    expect(html).not.toMatch(/https?:\/\//); // no CDN
  });

  it('keeps every other /admin path behind the admin token', async () => {
    const svc = testService();
    const { secret } = await userWithKey(svc.store, 'alice');
    for (const path of ['/admin/users', '/admin/usage', '/admin/alerts', '/admin/outcomes', '/admin/', '/admin/dashboard.html', '/admin/vendor/uPlot.iife.js', '/admin/vendor/../users']) {
      expect((await svc.app.request(path)).status, path).toBe(401);
    }
    expect((await svc.as('wrong-token', '/admin/outcomes')).status).toBe(401);
    expect((await svc.as(secret, '/admin/outcomes')).status).toBe(403);
    expect((await svc.as(secret, '/admin/users')).status).toBe(403);
    expect((await svc.admin('GET', '/admin/users')).status).toBe(200);
  });

  it('counts settled requests by outcome in a range', async () => {
    const svc = testService();
    const { subject } = await userWithKey(svc.store, 'alice');
    const outcomes = ['ok', 'ok', 'cut_off', 'client_abort', 'cut_off'] as const;
    for (const [i, outcome] of outcomes.entries()) {
      await svc.store.settle({
        holdId: `h${i}`,
        subject,
        usage: { model: 'gpt-4o', inputTokens: 10, outputTokens: 5, cachedTokens: 0, reasoningTokens: 0, costMicros: 1, source: 'upstream', outcome, latencyMs: 1, sessionId: null, tags: {} },
        now: T0 - (outcomes.length - i) * 86_400_000,
      });
    }
    const all = await (await svc.admin('GET', '/admin/outcomes')).json();
    expect(all).toEqual({ from: '2026-11-01T00:00:00.000Z', to: new Date(T0 + 1).toISOString(), outcomes: { ok: 2, cut_off: 2, client_abort: 1, upstream_error: 0, interrupted: 0, refused: 0 }, scanned: 5, truncated: false });
    const lastTwoDays = await (await svc.admin('GET', `/admin/outcomes?from=${new Date(T0 - 2.5 * 86_400_000).toISOString()}`)).json();
    expect(lastTwoDays).toMatchObject({ outcomes: { ok: 0, cut_off: 1, client_abort: 1 } });
    expect((await svc.admin('GET', `/admin/outcomes?from=${new Date(T0).toISOString()}&to=${new Date(T0).toISOString()}`)).status).toBe(400);
  });
});
