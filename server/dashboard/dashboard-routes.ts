import path from 'node:path';
import { Hono } from 'hono';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { projectRoot } from '../../plugin/project-root.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { authenticate, requireAdmin } from '../http/authenticate.js';
import { ApiError } from '../http/errors.js';
import { staticFile } from '../http/static-file.js';
import { queryOf } from '../http/validate.js';
import { countOutcomes, OUTCOME_SCAN_LIMIT } from './outcomes.js';

/**
 * The dashboard and a user's own page: code and styles only from this server, data only from its
 * own API, and never in a frame (their buttons revoke keys and delete budgets: nothing to click-jack).
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** What both pages load besides their own files (the card comes from /plugin, as LobeChat loads it). */
const SHARED = ['console-kit.js', 'usage-chart.js', 'console.css'];

/**
 * The static files, by the exact path they are served at. They hold no data (each page asks for a
 * token or key and calls the API with it), so they are the only `/admin` paths without auth.
 */
function staticFiles(root: string): Record<string, string> {
  const pub = path.join(root, 'public');
  const uplot = path.join(root, 'node_modules', 'uplot', 'dist');
  const files: Record<string, string> = {
    '/admin': path.join(pub, 'dashboard.html'),
    '/admin/dashboard.js': path.join(pub, 'dashboard.js'),
    '/admin/manage.js': path.join(pub, 'manage.js'),
    '/admin/dashboard.css': path.join(pub, 'dashboard.css'),
    '/me': path.join(pub, 'me.html'),
    '/me/me.js': path.join(pub, 'me.js'),
    '/me/me.css': path.join(pub, 'me.css'),
  };
  for (const base of ['/admin', '/me']) {
    for (const file of SHARED) files[`${base}/${file}`] = path.join(pub, file);
    files[`${base}/vendor/uPlot.iife.min.js`] = path.join(uplot, 'uPlot.iife.min.js');
    files[`${base}/vendor/uPlot.min.css`] = path.join(uplot, 'uPlot.min.css');
  }
  return files;
}

const PAGES = new Set(['/admin', '/me']);
const PAGE_HEADERS = { 'content-security-policy': DASHBOARD_CSP, 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const outcomesQuerySchema = z.object({ from: instant.optional(), to: instant.optional() });

/**
 * `GET /admin` (the operators' dashboard and its files, no token needed), `GET /me` (a user's own
 * page and its files, likewise) and `GET /admin/outcomes`
 * (admin token: settled requests by outcome). Mounted before app.ts's `/admin/*` auth, so the
 * outcomes route authenticates itself.
 */
export function dashboardRoutes(services: Services, root: string = projectRoot()) {
  const app = new Hono<AppEnv>();
  for (const [route, file] of Object.entries(staticFiles(root))) {
    app.get(route, staticFile(file, PAGES.has(route) ? PAGE_HEADERS : {}));
  }
  app.get('/admin/outcomes', authenticate(services), requireAdmin, async (c) => {
    const q = queryOf(c, outcomesQuerySchema);
    const now = services.clock.now();
    const from = q.from ?? DateTime.fromMillis(now, { zone: 'UTC' }).startOf('month').toMillis();
    const to = q.to ?? now + 1;
    if (from >= to) throw new ApiError('invalid_request', 'from: must be before to');
    const entries = await services.store.recentEntries(OUTCOME_SCAN_LIMIT);
    return c.json(countOutcomes(entries, from, to, OUTCOME_SCAN_LIMIT));
  });
  return app;
}
