import { Hono } from 'hono';
import { cors } from 'hono/cors';
import type { AppEnv, Services } from '../server/http/app-env.js';
import { buildManifest } from './manifest.js';

/**
 * `GET /manifest.json`, the URL a user pastes into LobeChat's "Custom plugin → URL" form.
 * LobeChat fetches it from the browser, so CORS is open (and preflights are answered). Its URLs use
 * PUBLIC_URL when the operator set one, else the origin this request reached us at, so a manifest
 * fetched over the LAN points back at the LAN address rather than at localhost.
 */
export function manifestRoutes({ config }: Services) {
  return new Hono<AppEnv>()
    .use('/manifest.json', cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'] }))
    .get('/manifest.json', (c) => {
      const base = config.publicUrl ?? new URL(c.req.url).origin;
      // The URLs inside depend on PUBLIC_URL and the Host; never let a cache hand out a stale copy.
      c.header('Cache-Control', 'no-cache');
      return c.json(buildManifest(base));
    });
}
