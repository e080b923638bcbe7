import { Hono } from 'hono';
import { DateTime } from 'luxon';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { queryOf } from '../http/validate.js';
import { usageCsv, usageJson, usageQuerySchema } from '../reports/usage-report.js';
import { holdView } from './views.js';

const MAX_DAY_REPORT_MS = 3660 * 86_400_000;

/** `/admin/usage` (JSON or CSV) and `/admin/holds` (what in-flight requests have set aside). */
export function reportRoutes({ store, clock }: Services) {
  return new Hono<AppEnv>()
    .get('/usage', async (c) => {
      const q = queryOf(c, usageQuerySchema);
      const now = clock.now();
      // Default range: this month so far, in the report's time zone.
      const from = q.from ?? DateTime.fromMillis(now, { zone: q.tz }).startOf('month').toMillis();
      const to = q.to ?? now + 1;
      if (from >= to) throw new ApiError('invalid_request', 'from: must be before to');
      if (q.groupBy === 'day' && to - from > MAX_DAY_REPORT_MS) {
        throw new ApiError('invalid_request', 'from: a report by day covers at most 3660 days; narrow from/to');
      }
      const rows = await store.usageReport({ groupBy: q.groupBy, from, to, timeZone: q.tz });
      if (q.format === 'csv') {
        c.header('Content-Type', 'text/csv; charset=utf-8');
        c.header('Content-Disposition', `attachment; filename="lobe-quota-usage-by-${q.groupBy}.csv"`);
        return c.body(usageCsv(q.groupBy, rows));
      }
      return c.json(usageJson(q.groupBy, from, to, rows));
    })
    .get('/holds', async (c) => c.json({ holds: (await store.listHolds()).map(holdView) }));
}
