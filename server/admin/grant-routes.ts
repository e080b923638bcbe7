import { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { jsonBody } from '../http/validate.js';
import { resolveBudgets, type Budget } from '../quota/budgets.js';
import { scopeSchema } from '../quota/scope.js';
import { microsToUsd, usdToMicros } from '../quota/status.js';
import { bucketAt } from '../quota/window.js';
import type { Grant } from '../store/types.js';

/** `POST /admin/grants`: extra room on one budget, for its current window or until a date. */
export const postGrantBody = z
  .strictObject({
    budgetId: z.string().min(1).max(600).describe('a budget id from GET /admin/budgets, or a config default as `config:SCOPE|PERIOD`'),
    tokens: z.number().int().min(1).max(1e15).optional(),
    usd: z.number().positive().max(1e9).optional(),
    until: z.iso.datetime({ offset: true }).optional().describe('ISO 8601; default: the end of the budget’s current window'),
    reason: z.string().max(500).optional(),
  })
  .refine((b) => b.tokens !== undefined || b.usd !== undefined, { message: 'a grant needs tokens or usd (or both)', path: ['tokens'] });

export const grantView = (g: Grant) => ({
  id: g.id,
  budgetKey: g.budgetKey,
  scope: g.budgetKey.slice(0, g.budgetKey.indexOf('|')),
  tokens: g.tokens,
  usd: microsToUsd(g.micros),
  startsAt: new Date(g.startsAt).toISOString(),
  endsAt: new Date(g.endsAt).toISOString(),
  decidedBy: g.decidedBy,
  requestId: g.requestId,
  reason: g.reason,
  createdAt: new Date(g.createdAt).toISOString(),
});

/**
 * Where a grant made at `now` ends: with the budget's current window (a calendar window's end; a
 * rolling window's length from now; never for a total budget, so a date is needed), or `until`
 * when that is sooner.
 */
function grantEnd(budget: Budget, now: number, until: number | undefined): number | null {
  const window = budget.window;
  const windowEnd = window.kind === 'total' ? null : window.kind === 'rolling' ? now + window.hours * 3_600_000 : bucketAt(window, now).end;
  if (until === undefined) return windowEnd;
  return windowEnd === null ? until : Math.min(until, windowEnd);
}

/** `/admin/grants`: grants an admin makes by hand (an approved increase request makes its own). */
export function grantRoutes({ store, config, clock }: Services) {
  async function findBudget(id: string): Promise<Budget | null> {
    const stored = (await store.listBudgets()).find((b) => b.id === id);
    if (stored) return stored;
    if (!id.startsWith('config:')) return null;
    // A config default as it applies to one scope: `config:user:alice|month`.
    const scopeText = id.slice('config:'.length, id.indexOf('|'));
    const scope = scopeSchema.safeParse(scopeText);
    if (!scope.success) return null;
    return resolveBudgets([scope.data], [], config.defaultBudgets, config.alertThresholds).find((b) => b.id === id) ?? null;
  }

  return new Hono<AppEnv>()
    .post('/grants', async (c) => {
      const body = await jsonBody(c, postGrantBody);
      const budget = await findBudget(body.budgetId);
      if (!budget) throw new ApiError('not_found', `budgetId: no budget ${JSON.stringify(body.budgetId)}`);
      const now = clock.now();
      const until = body.until === undefined ? undefined : Date.parse(body.until);
      if (until !== undefined && until <= now) throw new ApiError('invalid_request', 'until: must be in the future');
      const endsAt = grantEnd(budget, now, until);
      if (endsAt === null) throw new ApiError('invalid_request', 'until: a total budget never resets, so a grant on it needs an end date');
      const grant = await store.createGrant(
        {
          budgetKey: budget.key,
          scope: budget.scope,
          tokens: body.tokens ?? 0,
          micros: body.usd === undefined ? 0 : usdToMicros(body.usd),
          startsAt: now,
          endsAt,
          decidedBy: 'admin',
          requestId: null,
          reason: body.reason ?? null,
        },
        now,
      );
      return c.json(grantView(grant), 201);
    })
    .get('/grants', async (c) => {
      const scope = c.req.query('scope');
      const active = c.req.query('active');
      const grants = await store.listGrants({ ...(scope ? { scope } : {}), ...(active === 'true' ? { activeAt: clock.now() } : {}) });
      return c.json({ grants: grants.map(grantView) });
    });
}
