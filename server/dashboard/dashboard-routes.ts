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

/** The dashboard page: code and styles only from this server, data only from its own API. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/**
 * The static files, by the exact path they are served at. They hold no data (the page asks for the
 * admin token and calls the admin API with it), so they are the only `/admin` paths without auth.
 */
function staticFiles(root: string): Record<string, string> {
  const pub = path.join(root, 'public');
  const uplot = path.join(root, 'node_modules', 'uplot', 'dist');
  return {
    '/admin': path.join(pub, 'dashboard.html'),
    '/admin/dashboard.js': path.join(pub, 'dashboard.js'),
    '/admin/dashboard.css': path.join(pub, 'dashboard.css'),
    '/admin/vendor/uPlot.iife.min.js': path.join(uplot, 'uPlot.iife.min.js'),
    '/admin/vendor/uPlot.min.css': path.join(uplot, 'uPlot.min.css'),
  };
}

const PAGE_HEADERS = { 'content-security-policy': DASHBOARD_CSP, 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const outcomesQuerySchema = z.object({ from: instant.optional(), to: instant.optional() });

/**
 * `GET /admin` (the operators' dashboard and its files, no token needed) and `GET /admin/outcomes`
 * (admin token: settled requests by outcome). Mounted before app.ts's `/admin/*` auth, so the
 * outcomes route authenticates itself.
 */
export function dashboardRoutes(services: Services, root: string = projectRoot()) {
  const app = new Hono<AppEnv>();
  for (const [route, file] of Object.entries(staticFiles(root))) {
    app.get(route, staticFile(file, route === '/admin' ? PAGE_HEADERS : {}));
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
