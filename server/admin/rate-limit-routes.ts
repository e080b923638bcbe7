import { Hono } from 'hono';
import { z } from 'zod';
import type { RateLimitsConfig } from '../config/schema.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { jsonBody, parseWith } from '../http/validate.js';
import {
  effectiveLimit,
  formatRateScope,
  RATE_LIMIT_FIELDS,
  rateLimitOverrideShape,
  rateScopeSchema,
  type RateLimitOverride,
  type RateLimitSetting,
} from '../quota/rate-limits.js';
import { resolveSubject } from '../quota/subjects.js';

/**
 * A subject's limits: each field a positive integer, or null for no limit; a field left out keeps
 * the config's value for the subject's kind (`rateLimits.user` for `user:ID`). At least one field.
 */
export const putRateLimitBody = z
  .strictObject({ scope: rateScopeSchema.describe('key:ID, user:ID or project:ID'), ...rateLimitOverrideShape })
  .refine((body) => RATE_LIMIT_FIELDS.some((f) => f in body), {
    message: `give at least one of ${RATE_LIMIT_FIELDS.join(', ')} (a number, or null for no limit); DELETE /admin/rate-limits/{scope} removes a subject's limits`,
  });

/** A setting as listed: the subject's own fields, and the limits in force once the config's are under them. */
const rateLimitView = (config: RateLimitsConfig, s: RateLimitSetting) => ({
  scope: formatRateScope(s.scope),
  limits: s.limits,
  effective: effectiveLimit(config[s.scope.kind], s.limits),
  updatedAt: new Date(s.updatedAt).toISOString(),
});

/** `/admin/rate-limits`: per-subject limits in the database, over the config's `rateLimits` (listed beside them). */
export function rateLimitRoutes({ store, config, clock }: Services) {
  return new Hono<AppEnv>()
    .put('/rate-limits', async (c) => {
      const { scope, ...fields } = await jsonBody(c, putRateLimitBody);
      if ((await resolveSubject(store, scope)) === null) {
        throw new ApiError('not_found', `scope: no ${scope.kind} ${JSON.stringify(scope.id)} (create it first)`);
      }
      const limits: RateLimitOverride = {};
      for (const field of RATE_LIMIT_FIELDS) if (fields[field] !== undefined) limits[field] = fields[field];
      const { setting, replaced } = await store.putRateLimit(scope, limits, clock.now());
      const view = rateLimitView(config.rateLimits, setting);
      return c.json({ ...view, replaced: replaced === null ? null : rateLimitView(config.rateLimits, replaced) }, replaced === null ? 201 : 200);
    })
    .get('/rate-limits', async (c) =>
      c.json({ rateLimits: (await store.listRateLimits()).map((s) => rateLimitView(config.rateLimits, s)), defaults: config.rateLimits }),
    )
    .delete('/rate-limits/:scope', async (c) => {
      const scope = parseWith(rateScopeSchema, c.req.param('scope'), 'scope');
      const removed = await store.deleteRateLimit(scope);
      if (!removed) throw new ApiError('not_found', `no rate limits set for ${formatRateScope(scope)}`);
      return c.json(rateLimitView(config.rateLimits, removed));
    });
}
