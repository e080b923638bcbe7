import { Hono } from 'hono';
import { bearerToken, hashSecret, matchesHash, USER_KEY_PREFIX } from '../auth/secrets.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { UNKNOWN_TOKEN } from '../http/authenticate.js';
import type { Metrics } from './metrics.js';

/**
 * `GET /metrics`: Prometheus text for the admin token or METRICS_TOKEN. The metrics token exists so
 * a Prometheus server's config never holds a token that can change budgets.
 */
export function metricsRoutes(services: Pick<Services, 'store' | 'config' | 'adminTokenHash'>, metrics: Metrics) {
  const { metricsToken } = services.config;
  const metricsTokenHash = metricsToken === undefined ? null : hashSecret(metricsToken);
  return new Hono<AppEnv>().get('/metrics', async (c) => {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw new ApiError('unauthorized', 'missing "Authorization: Bearer <token>" header');
    const allowed = matchesHash(token, services.adminTokenHash) || (metricsTokenHash !== null && matchesHash(token, metricsTokenHash));
    if (!allowed) {
      // A valid user key is told it lacks the right, rather than that it is unknown.
      const userKey = token.startsWith(USER_KEY_PREFIX) ? await services.store.findKeyByHash(hashSecret(token)) : null;
      if (userKey !== null) throw new ApiError('forbidden', '/metrics needs the admin token or METRICS_TOKEN; a user key only reads its own /quota');
      throw new ApiError('unauthorized', UNKNOWN_TOKEN);
    }
    const { text, contentType } = await metrics.render();
    return c.body(text, 200, { 'content-type': contentType, 'cache-control': 'no-store' });
  });
}
