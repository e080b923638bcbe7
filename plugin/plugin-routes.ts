import { Hono } from 'hono';
import type { AppEnv, Services } from '../server/http/app-env.js';
import { cardImageRoutes } from './card-image-route.js';
import { cardRoutes } from './card-route.js';
import { checkQuotaRoutes } from './check-quota-route.js';
import { manifestRoutes } from './manifest-route.js';
import { mcpRoutes } from './mcp-route.js';

/**
 * The LobeChat side: `GET /manifest.json`, the `checkQuota` API its gateway calls, the card page
 * its iframe shows, the same tool over MCP at `/mcp`, and the card as a PNG for a bearer key.
 */
export function pluginRoutes(services: Services) {
  return new Hono<AppEnv>()
    .route('/', manifestRoutes(services))
    .route('/', checkQuotaRoutes(services))
    .route('/', cardRoutes())
    .route('/', cardImageRoutes(services))
    .route('/', mcpRoutes(services));
}
