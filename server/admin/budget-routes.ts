import { Hono } from 'hono';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { jsonBody } from '../http/validate.js';
import { formatScope } from '../quota/scope.js';
import { usdToMicros } from '../quota/status.js';
import { resolveSubject } from '../quota/subjects.js';
import { putBudgetBody } from './schemas.js';
import { budgetView } from './views.js';

/** `/admin/budgets`: overrides in the database; the config's defaults are listed beside them. */
export function budgetRoutes({ store, config, clock }: Services) {
  return new Hono<AppEnv>()
    .put('/budgets', async (c) => {
      const body = await jsonBody(c, putBudgetBody);
      if (body.scope.kind === 'upstream') {
        const { id } = body.scope;
        if (!config.upstreams.some((u) => u.name === id)) throw new ApiError('not_found', `scope: no upstream ${JSON.stringify(id)} in the config`);
      } else if ((await resolveSubject(store, body.scope)) === null) {
        throw new ApiError('not_found', `scope: no ${formatScope(body.scope).replace(":", " ")} (create it first)`);
      }
      const { budget, replaced } = await store.putBudget(
        {
          scope: body.scope,
          window: body.window,
          limitTokens: body.limitTokens,
          limitMicros: body.limitUsd === null ? null : usdToMicros(body.limitUsd),
          thresholds: body.thresholds ?? null,
          onLimit: body.onLimit,
          downgradeTo: body.downgradeTo ?? null,
          models: body.models ?? null,
          fallback: body.fallback ?? [],
        },
        clock.now(),
      );
      // What was there is part of the answer: a PUT that replaces a budget of another unit or zone
      // should say so, not look like the budget was merely set.
      return c.json({ ...budgetView(budget), replaced: replaced === null ? null : budgetView(replaced) }, replaced === null ? 201 : 200);
    })
    .get('/budgets', async (c) =>
      c.json({
        budgets: (await store.listBudgets()).map(budgetView),
        defaults: config.defaultBudgets.map((d) => ({ ...d, thresholds: d.thresholds ?? config.alertThresholds })),
      }),
    )
    .delete('/budgets/:id', async (c) => {
      const budget = await store.deleteBudget(c.req.param('id'));
      if (!budget) throw new ApiError('not_found', `no budget ${JSON.stringify(c.req.param('id'))}`);
      return c.json(budgetView(budget));
    });
}
