import { describe, expect, it } from 'vitest';
import { T0, testService, userWithKey } from '../testing/harness.js';
import { DASHBOARD_CSP } from './dashboard-routes.js';

const SHARED = ['console-kit.js', 'usage-chart.js', 'console.css', 'vendor/uPlot.iife.min.js', 'vendor/uPlot.min.css'];
const PAGE_FILES = [
  '/admin',
  '/admin/dashboard.js',
  '/admin/manage.js',
  '/admin/dashboard.css',
  '/me',
  '/me/me.js',
  '/me/me.css',
  ...SHARED.flatMap((file) => [`/admin/${file}`, `/me/${file}`]),
];

describe('dashboard routes', () => {
  it('serves the page and its files without a token, the page under a strict CSP', async () => {
    const svc = testService();
    for (const path of PAGE_FILES) {
      const response = await svc.app.request(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect((await response.text()).length).toBeGreaterThan(100);
    }
    for (const path of ['/admin', '/me']) {
      const page = await svc.app.request(path);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(page.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await page.text();
      expect(html, path).not.toMatch(/<script>|<style>|\sstyle=|\son\w+=/); // no inline code or style
      expect(html, path).not.toMatch(/https?:\/\//); // no CDN
    }
    expect(DASHBOARD_CSP.split('; ')).toEqual(expect.arrayContaining(["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]));
    expect(DASHBOARD_CSP).not.toMatch(/unsafe|\*/);
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
