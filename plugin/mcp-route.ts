import { Hono } from 'hono';
import type { AppEnv, Services } from '../server/http/app-env.js';

/** Placeholder until this part of the plugin is built. */
export function mcpRoutes(_services?: Services) {
  return new Hono<AppEnv>();
}
