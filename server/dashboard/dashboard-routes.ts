import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono } from 'hono';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { projectRoot } from '../../plugin/project-root.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { authenticate, requireAdmin } from '../http/authenticate.js';
import { ApiError } from '../http/errors.js';
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

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/**
 * The static files, by the exact path they are served at. They hold no data (the page asks for the
 * admin token and calls the admin API with it), so they are the only `/admin` paths without auth.
 */
function staticFiles(root: string): Record<string, { file: string; type: string }> {
  const pub = path.join(root, 'public');
  const uplot = path.join(root, 'node_modules', 'uplot', 'dist');
  return {
    '/admin': { file: path.join(pub, 'dashboard.html'), type: 'text/html; charset=utf-8' },
    '/admin/dashboard.js': { file: path.join(pub, 'dashboard.js'), type: JS },
    '/admin/dashboard.css': { file: path.join(pub, 'dashboard.css'), type: CSS },
    '/admin/vendor/uPlot.iife.min.js': { file: path.join(uplot, 'uPlot.iife.min.js'), type: JS },
    '/admin/vendor/uPlot.min.css': { file: path.join(uplot, 'uPlot.min.css'), type: CSS },
  };
}

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const outcomesQuerySchema = z.object({ from: instant.optional(), to: instant.optional() });

/**
 * `GET /admin` (the operators' dashboard and its files, no token needed) and `GET /admin/outcomes`
 * (admin token: settled requests by outcome). Mounted before app.ts's `/admin/*` auth, so the
 * outcomes route authenticates itself.
 */
export function dashboardRoutes(services: Services, root: string = projectRoot()) {
  const app = new Hono<AppEnv>();
  for (const [route, { file, type }] of Object.entries(staticFiles(root))) {
    app.get(route, async (c) => {
      const body = await readFile(file);
      c.header('content-type', type);
      c.header('cache-control', 'no-cache');
      c.header('x-content-type-options', 'nosniff');
      if (route === '/admin') {
        c.header('content-security-policy', DASHBOARD_CSP);
        c.header('referrer-policy', 'no-referrer');
        c.header('x-frame-options', 'DENY');
      }
      return c.body(body);
    });
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
