import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { pluginRoutes } from '../plugin/plugin-routes.js';
import { budgetRoutes } from './admin/budget-routes.js';
import { rateLimitRoutes } from './admin/rate-limit-routes.js';
import { grantRoutes } from './admin/grant-routes.js';
import { directoryRoutes } from './admin/directory-routes.js';
import { reportRoutes } from './admin/report-routes.js';
import { dashboardRoutes } from './dashboard/dashboard-routes.js';
import type { AppEnv, Services } from './http/app-env.js';
import { authenticate, requireAdmin } from './http/authenticate.js';
import { ApiError, errorJson, renderError } from './http/errors.js';
import { healthRoutes } from './http/health-routes.js';
import type { DirectRoute } from './http/node-listener.js';
import { Metrics } from './metrics/metrics.js';
import { metricsRoutes } from './metrics/metrics-routes.js';
import { openApiRoutes } from './openapi/openapi-routes.js';
import { geminiNotFound, geminiRoutes } from './proxy/gemini-routes.js';
import { newApiPricingRoutes } from './proxy/new-api-pricing.js';
import { ollamaRootRoutes, ollamaRoutes } from './proxy/ollama-routes.js';
import { createPriceBook } from './proxy/pricing.js';
import { proxyCors } from './proxy/proxy-cors.js';
import { meteredRoutes, proxyNotFound, proxyRoutes } from './proxy/proxy-routes.js';
import { RateLimiter } from './proxy/rate-limiter.js';
import { ResponseCache } from './proxy/response-cache/response-cache.js';
import { estimateOverrides } from './proxy/model-family.js';
import { createTokenCounter } from './proxy/token-count.js';
import { historyRoutes } from './quota/history-routes.js';
import { ownQuotaRoute } from './quota/own-status.js';
import { quotaRoutes } from './quota/quota-routes.js';
import { requestRoutes } from './requests/request-routes.js';

const ADMIN_BODY_LIMIT = 64 * 1024;

/** The whole HTTP surface, built from its services so tests can use `app.request` without a port. */
export function createApp(services: Services) {
  const app = new Hono<AppEnv>();
  app.onError(renderError);
  app.notFound((c) => {
    if (c.req.path.startsWith('/v1/')) return proxyNotFound(c);
    if (c.req.path.startsWith('/v1beta/')) return geminiNotFound(c);
    return errorJson(c, new ApiError('not_found', `no route for ${c.req.method} ${c.req.path}`));
  });

  app.route('/', healthRoutes(services)); // for load balancers: 503 when the store is unreachable
  app.route('/', openApiRoutes(services)); // GET /openapi.json and /docs: no token, no data

  const prices = createPriceBook(services.config.prices);
  // Per app, not module-level: its registry must not be shared by two apps in one process.
  const metrics = new Metrics({ ...services, prices });
  app.route('/', metricsRoutes(services, metrics));
  app.route('/', newApiPricingRoutes(services, prices)); // GET /api/pricing in New API's shape: public, as New API's is
  app.route('/', dashboardRoutes(services)); // before the /admin/* auth: its page files need no token, /admin/outcomes checks its own

  // Who is calling is settled before anything about the body: no one without the admin token
  // learns how a body is judged (not even its size limit).
  app.use(
    '/admin/*',
    authenticate(services),
    requireAdmin,
    bodyLimit({
      maxSize: ADMIN_BODY_LIMIT,
      onError: (c) => errorJson(c, new ApiError('payload_too_large', `body: larger than ${ADMIN_BODY_LIMIT} bytes`)),
    }),
  );
  app.route('/admin', directoryRoutes(services));
  app.route('/admin', budgetRoutes(services));
  app.route('/admin', rateLimitRoutes(services));
  app.route('/admin', grantRoutes(services));
  app.route('/admin', reportRoutes(services));

  // One set of proxy services for every API: rate limits and counters are the user's, whatever API they use.
  const proxy = {
    ...services,
    prices,
    tokens: services.tokens ?? createTokenCounter({ estimates: estimateOverrides(services.config.proxy.estimates) }),
    rateLimiter: new RateLimiter(services.config.rateLimits),
    metrics,
    responseCache: services.config.cache.enabled ? (services.responseCache ?? ResponseCache.open(services.config.cache, services.clock, null)) : undefined,
  };
  app.use('/v1/*', proxyCors(services.config.proxy.corsOrigins));
  const metered = meteredRoutes(proxy);
  app.route('/v1', proxyRoutes(proxy, metered));
  // Google's Gemini API, where @google/genai puts its version: `<base URL>/v1beta/models/…`.
  app.use('/v1beta/*', proxyCors(services.config.proxy.corsOrigins));
  app.route('/v1beta', geminiRoutes(proxy));
  // Ollama's own API, at a base URL of its own (its paths, /api/…, are not under /v1).
  app.use('/ollama/*', proxyCors(services.config.proxy.corsOrigins));
  app.route('/ollama', ollamaRoutes(proxy));
  app.use('/api/*', proxyCors(services.config.proxy.corsOrigins));
  app.route('/', ollamaRootRoutes(proxy));

  app.route('/', pluginRoutes(services));

  app.get('/quota', ownQuotaRoute(services));
  app.use('/quota', authenticate(services));
  app.use('/quota/*', authenticate(services));
  app.route('/quota', quotaRoutes(services));
  app.route('/quota', historyRoutes(services)); // a user's usage by day and newest requests, for /me
  // After the /admin and /quota authentication; its /requests/:id/* links are signed, not authenticated.
  app.route('/', requestRoutes(services));
  // The metered routes answered straight from Node (see nodeListener): /v1/* has no middleware but
  // proxyCors, which does nothing for a request without an Origin, and those are the only ones sent there.
  const directRoutes = new Map<string, DirectRoute>(Object.entries(metered).map(([path, route]) => [`/v1${path}`, route]));
  return Object.assign(app, { directRoutes });
}
