import { Hono } from 'hono';
import { DateTime } from 'luxon';
import { z } from 'zod';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { queryOf } from '../http/validate.js';
import { usageCsv, usageCsvFileName, usageJson, usageQuerySchema } from '../reports/usage-report.js';
import { holdView } from './views.js';

const MAX_DAY_REPORT_MS = 3660 * 86_400_000;

export const alertsQuerySchema = z.object({
  scope: z.string().min(1).max(200).optional(),
  /** A threshold percent, `projected`, `anomaly` (spike alerts) or `overrun` (an upstream charged past a request's limit). */
  level: z.union([z.literal('projected'), z.literal('anomaly'), z.literal('overrun'), z.coerce.number().int().min(1).max(1000)]).optional(),
  /** The start of the window the alerts belong to (ISO), as listed in `windowStart`. */
  window: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
  state: z.enum(['pending', 'delivered']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `/admin/usage` (JSON or CSV), `/admin/holds` (what in-flight requests have set aside, and a way
 * to release one) and `/admin/alerts` (and a way to retry one's deliveries now).
 */
export function reportRoutes({ store, clock }: Services) {
  return new Hono<AppEnv>()
    .get('/usage', async (c) => {
      const q = queryOf(c, usageQuerySchema);
      const now = clock.now();
      // Default range: this month so far, in the report's time zone.
      const from = q.from ?? DateTime.fromMillis(now, { zone: q.tz }).startOf('month').toMillis();
      const to = q.to ?? now + 1;
      if (from >= to) throw new ApiError('invalid_request', 'from: must be before to');
      if (q.groupBy.includes('day') && to - from > MAX_DAY_REPORT_MS) {
        throw new ApiError('invalid_request', 'from: a report by day covers at most 3660 days; narrow from/to');
      }
      const rows = await store.usageReport({ groupBy: q.groupBy, from, to, timeZone: q.tz });
      if (q.format === 'csv') {
        c.header('Content-Type', 'text/csv; charset=utf-8');
        c.header('Content-Disposition', `attachment; filename="${usageCsvFileName(q.groupBy)}"`);
        return c.body(usageCsv(q.groupBy, rows));
      }
      return c.json(usageJson(q.groupBy, from, to, rows));
    })
    .get('/holds', async (c) => c.json({ holds: (await store.listHolds()).map(holdView) }))
    // For the hold that outlives its request (which should not happen): its room comes back at
    // once and nothing is charged. Were its request in fact still running, its next lease would find
    // no hold and end the stream, and its settlement would still charge what it delivered.
    .delete('/holds/:id', async (c) => {
      const id = c.req.param('id');
      const hold = (await store.listHolds()).find((h) => h.id === id);
      if (!hold || !(await store.release(id))) throw new ApiError('not_found', `no hold ${JSON.stringify(id)}`);
      return c.json(holdView(hold));
    })
    // "Retry now": a channel that was down is back, and nobody wants to wait out the backoff.
    .post('/alerts/:id/retry', async (c) => {
      const id = c.req.param('id');
      const retried = await store.retryDeliveries(id, clock.now());
      if (retried === null) throw new ApiError('not_found', `no alert ${JSON.stringify(id)}`);
      if (retried === 0) throw new ApiError('conflict', `alert ${JSON.stringify(id)} has no delivery pending: every channel has it already`);
      return c.json({ id, retried });
    })
    .get('/alerts', async (c) => {
      const q = queryOf(c, alertsQuerySchema);
      const records = await store.listAlerts({
        limit: q.limit,
        ...(q.scope === undefined ? {} : { scope: q.scope }),
        ...(q.level === undefined ? {} : typeof q.level === 'number' ? { kind: 'threshold' as const, threshold: q.level } : { kind: q.level }),
        ...(q.window === undefined ? {} : { windowStart: q.window }),
        ...(q.state === undefined ? {} : { state: q.state }),
      });
      return c.json({
        alerts: records.map((r) => ({
          ...r.alert,
          windowStart: new Date(r.windowStart).toISOString(),
          deliveries: r.deliveries.map((d) => ({
            channel: d.channel,
            state: d.state,
            attempts: d.attempts,
            lastError: d.lastError,
            nextAttemptAt: d.state === 'pending' ? new Date(d.nextAttemptAt).toISOString() : null,
            deliveredAt: d.deliveredAt === null ? null : new Date(d.deliveredAt).toISOString(),
          })),
        })),
      });
    });
}
