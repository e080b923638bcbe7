import { Hono } from 'hono';
import type { AppEnv, Services } from './app-env.js';

/**
 * GET /health for load balancers: 200 when this instance can reach its store, 503 when it cannot
 * (with PostgreSQL, an instance that cannot meter should be taken out of rotation; SQLite is the
 * process's own file and always answers).
 */
export const healthRoutes = ({ store }: Pick<Services, 'store'>) =>
  new Hono<AppEnv>().get('/health', async (c) => {
    try {
      await store.ping();
      return c.json({ ok: true as const, store: store.kind });
    } catch (error) {
      return c.json({ ok: false as const, store: store.kind, error: `the ${store.kind} store is unreachable: ${(error as Error).message}` }, 503);
    }
  });
