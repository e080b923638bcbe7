import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createApp } from '../app.js';
import { hashSecret, newId, newUserKey } from '../auth/secrets.js';
import { ManualClock } from '../clock.js';
import { loadConfig, type Config } from '../config/load.js';
import { nodeListener, type ServedApp } from '../http/node-listener.js';
import type { DefaultBudget } from '../config/schema.js';
import type { TokenCounter } from '../proxy/token-count.js';
import { ResponseCache } from '../proxy/response-cache/response-cache.js';
import { Upstreams } from '../proxy/upstreams.js';
import type { RequestSubject } from '../quota/scope.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import type { AlertOptions } from '../alerts/alert-planning.js';

/** 2026-11-22T12:00:00Z: a fixed instant for tests. */
export const T0 = Date.parse('2026-11-22T12:00:00Z');
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export function testConfig(overrides: Partial<Config> = {}): Config {
  const loaded = loadConfig({ env: {}, cwd: '/nonexistent-lobe-quota-test' });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  return { ...loaded.config, ...overrides };
}

export function memoryStore(defaultBudgets: DefaultBudget[] = [], defaultThresholds = [50, 80, 90, 95, 100], alerts?: AlertOptions): SqliteStore {
  return SqliteStore.open({ file: ':memory:', defaultBudgets, defaultThresholds, ...(alerts ? { alerts } : {}) });
}

export interface TestService {
  store: SqliteStore;
  config: Config;
  clock: ManualClock;
  upstreams: Upstreams;
  app: ReturnType<typeof createApp>;
  /** `app.request` with the admin token and a JSON body. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  /** `app.request` with a bearer token. */
  as(token: string, path: string, init?: RequestInit): Promise<Response>;
}

export function testService(
  options: { defaultBudgets?: DefaultBudget[]; config?: Partial<Config>; tokens?: TokenCounter; responseCacheDir?: string; alerts?: AlertOptions } = {},
): TestService {
  const config = testConfig({ defaultBudgets: options.defaultBudgets ?? [], ...options.config });
  const store = memoryStore(config.defaultBudgets, config.alertThresholds, options.alerts);
  const clock = new ManualClock(T0);
  const upstreams = Upstreams.fromConfig(config);
  // In memory (the app's own) unless a test reads the cache's file.
  const responseCache = options.responseCacheDir === undefined ? undefined : ResponseCache.open(config.cache, clock, options.responseCacheDir);
  const app = createApp({
    store,
    config,
    clock,
    adminTokenHash: hashSecret(ADMIN_TOKEN),
    upstreams,
    ...(options.tokens ? { tokens: options.tokens } : {}),
    ...(responseCache ? { responseCache } : {}),
  });
  const as = (token: string, path: string, init: RequestInit = {}) =>
    Promise.resolve(app.request(path, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } }));
  return {
    store,
    config,
    clock,
    upstreams,
    app,
    as,
    admin: (method, path, body) =>
      as(ADMIN_TOKEN, path, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      }),
  };
}

/** A user (optionally in a project) with one key, created straight in the store. */
export async function userWithKey(
  store: Store,
  userId: string,
  projectId: string | null = null,
  now = T0,
): Promise<{ secret: string; subject: RequestSubject }> {
  if (projectId !== null && !(await store.getProject(projectId))) await store.createProject({ id: projectId, name: projectId }, now);
  await store.createUser({ id: userId, name: userId.toUpperCase(), projectId }, now);
  const { secret, prefix } = newUserKey();
  const keyId = newId('key');
  await store.createKey({ id: keyId, userId, name: 'test', service: false, secretHash: hashSecret(secret), prefix }, now);
  return { secret, subject: { userId, projectId, keyId } };
}

/**
 * Serves an app on 127.0.0.1 with an OS-chosen port: a fetch handler through @hono/node-server, or
 * an app as main serves it (its metered routes straight from Node: see nodeListener).
 */
export async function listen(app: ((request: Request) => Response | Promise<Response>) | ServedApp): Promise<{ url: string; close: () => Promise<void> }> {
  const server: ServerType = await new Promise((resolve) => {
    if (typeof app === 'function') {
      const s = serve({ fetch: app, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    } else {
      const s = createServer(nodeListener(app)).listen(0, '127.0.0.1', () => resolve(s));
    }
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive sockets (e.g. after a client aborted a stream) would hold close() for seconds.
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}

/** Polls an async condition every 5 ms until it holds; fails after `timeoutMs`. */
export async function eventually(condition: () => Promise<boolean>, timeoutMs = 2_000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What every proxy harness holds: a real lobe-quota in front of one fake upstream, and alice's key. */
export interface ServerInFront {
  svc: TestService;
  /** lobe-quota's base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** alice, in project "research", with a key of hers. */
  alice: Awaited<ReturnType<typeof userWithKey>>;
  /** Stops lobe-quota, its upstream pools, the fake and the store. */
  close(): Promise<void>;
}

/**
 * A real lobe-quota server on a free port whose config has `upstreams` (the fake's) first, with one
 * user (alice, in project "research") and her key: the part each API's proxy harness shares.
 * `onRequest` sees each request lobe-quota receives, before it is served.
 */
export async function serveInFrontOf(
  fake: { close(): Promise<void> },
  options: {
    upstreams: Config['upstreams'];
    defaultBudgets?: DefaultBudget[];
    config?: Partial<Config>;
    tokens?: TokenCounter;
    onRequest?: (request: Request) => void;
    responseCacheDir?: string | undefined;
    alerts?: AlertOptions | undefined;
  },
): Promise<ServerInFront> {
  const svc = testService({
    ...(options.tokens ? { tokens: options.tokens } : {}),
    ...(options.responseCacheDir === undefined ? {} : { responseCacheDir: options.responseCacheDir }),
    ...(options.alerts ? { alerts: options.alerts } : {}),
    defaultBudgets: options.defaultBudgets ?? [],
    config: { upstreams: options.upstreams, ...options.config },
  });
  const { onRequest } = options;
  const fetchHandler = onRequest
    ? // Hono's fetch takes the node server's bindings after the request: passed on as they come.
      (((request: Request, ...bindings: unknown[]) => {
        onRequest(request);
        return (svc.app.fetch as (request: Request, ...rest: unknown[]) => Response | Promise<Response>)(request, ...bindings);
      }) as (request: Request) => Response | Promise<Response>)
    : svc.app.fetch;
  // Served as main serves it, unless a test watches the requests as web Requests (Hono's path).
  const server = await listen(onRequest ? fetchHandler : svc.app);
  const alice = await userWithKey(svc.store, 'alice', 'research');
  return {
    svc,
    url: server.url,
    alice,
    async close() {
      await server.close();
      await svc.upstreams.close();
      await fake.close();
      await svc.store.close();
    },
  };
}
