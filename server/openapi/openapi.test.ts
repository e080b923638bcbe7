import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { CARD_CSP } from '../../plugin/card-route.js';
import { testService, userWithKey } from '../testing/harness.js';
import { openApiDocument } from './openapi-document.js';
import { quotaStatusListSchema, quotaStatusSchema } from '../quota/quota-status-schema.js';
import { REQUEST_SCHEMAS, ROUTES } from './routes-registry.js';

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * Out of scope for the document: static files (a path whose last segment has an extension other
 * than .json: the card's and the dashboard's js/css, uPlot, the docs page's own files). They are
 * files, not API. `ALL` entries are middleware (auth, CORS, body limits) or a method-not-allowed
 * catch-all, not routes of their own.
 */
const isStaticFile = (path: string) => /\.(?!json$)[a-z0-9]+$/i.test(path.split('/').pop() ?? '');

/** Hono's `/admin/keys/:id` in OpenAPI's form `/admin/keys/{id}`. */
const openApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function refsIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsIn(v, found);
  else if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string') found.push(v);
      else refsIn(v, found);
    }
  }
  return found;
}

const pointer = (doc: unknown, ref: string): unknown =>
  ref
    .slice(2)
    .split('/')
    .reduce<unknown>((at, key) => (at !== null && typeof at === 'object' ? (at as Json)[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);

describe('GET /openapi.json', () => {
  it('is served without a token, with servers from the request origin or PUBLIC_URL', async () => {
    const svc = testService();
    const response = await svc.app.request('http://lq.example:3400/openapi.json');
    expect(response.status).toBe(200);
    const doc = (await response.json()) as Json;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'lobe-quota', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(doc.servers).toEqual([{ url: 'http://lq.example:3400' }]);

    const behindProxy = testService({ config: { publicUrl: 'https://quota.example.com' } });
    const fromConfig = (await (await behindProxy.app.request('/openapi.json')).json()) as Json;
    expect(fromConfig.servers).toEqual([{ url: 'https://quota.example.com' }]);
  });

  it('is valid OpenAPI 3.1 (swagger-parser: the official 3.1 schema, every $ref resolved)', async () => {
    const doc = openApiDocument('http://127.0.0.1:3400');
    // The validator dereferences in place: give it a copy.
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
    // And it does reject a broken one: a parameter without `in`, a dangling $ref. (3.1 no longer
    // requires `responses`, so the structural test below checks that one.)
    const broken = structuredClone(doc) as { paths: Record<string, Record<string, Json>> };
    broken.paths['/health']!.get!.parameters = [{ name: 'x' }];
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
    const dangling = structuredClone(doc) as { paths: Record<string, Record<string, { responses: Record<string, Json> }>> };
    dangling.paths['/health']!.get!.responses['200'] = { description: 'x', content: { 'application/json': { schema: { $ref: '#/components/schemas/Nope' } } } };
    await expect(SwaggerParser.validate(dangling as never)).rejects.toThrow();
  });

  it('is structurally sound: every operation has responses, every $ref resolves, operation ids are unique', () => {
    const doc = openApiDocument('http://127.0.0.1:3400');
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
      const operations = Object.entries(item).filter(([k]) => METHODS.includes(k));
      expect(operations.length, path).toBeGreaterThan(0);
      for (const [method, op] of operations as [string, Json][]) {
        expect(Object.keys(op.responses as Json).length, `${method} ${path}`).toBeGreaterThan(0);
        const params = ((op.parameters ?? []) as Json[]).filter((p) => p.in === 'path').map((p) => p.name);
        expect(params.sort(), `${method} ${path} path parameters`).toEqual([...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort());
        expect(ids.has(op.operationId as string), `duplicate operationId ${String(op.operationId)}`).toBe(false);
        ids.add(op.operationId as string);
      }
    }
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref.startsWith('#/'), ref).toBe(true);
      expect(pointer(doc, ref), ref).toBeDefined();
    }
  });

  it('documents every route the app has, and only those', () => {
    const { app } = testService();
    const actual = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL' && !isStaticFile(r.path))
        .map((r) => `${r.method.toUpperCase()} ${openApiPath(r.path)}`),
    );
    const documented = new Set(ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    expect([...actual].filter((r) => !documented.has(r)), 'routes missing from server/openapi/routes-registry.ts').toEqual([]);
    expect([...documented].filter((r) => !actual.has(r)), 'documented routes the app does not have').toEqual([]);
    expect(documented.size).toBe(ROUTES.length); // no route listed twice
  });

  it('describes the admin schemas from zod: fields, required ones, defaults and enums', () => {
    const doc = openApiDocument('http://x');
    const schemas = (doc.components as { schemas: Record<string, Json> }).schemas;
    expect(schemas.CreateUserBody).toMatchObject({ type: 'object', required: ['id'], additionalProperties: false });
    expect(Object.keys(schemas.PutBudgetBody?.properties as Json)).toEqual(
      expect.arrayContaining(['scope', 'window', 'limitTokens', 'limitUsd', 'thresholds', 'onLimit', 'downgradeTo']),
    );
    const usage = (doc.paths as Record<string, { get: { parameters: Json[] } }>)['/admin/usage']?.get.parameters ?? [];
    expect(usage.map((p) => p.name)).toEqual(['groupBy', 'from', 'to', 'tz', 'format']);
    expect(usage.find((p) => p.name === 'format')).toMatchObject({ in: 'query', required: false, schema: { enum: ['json', 'csv'] } });
  });
});

describe('the examples in the document', () => {
  const withBodies = ROUTES.filter((r) => r.body !== undefined);

  it('each parses with the zod schema its route validates with', () => {
    expect(withBodies.length).toBe(Object.keys(REQUEST_SCHEMAS).length);
    for (const route of withBodies) {
      const result = REQUEST_SCHEMAS[route.body!.schema].safeParse(route.body!.example);
      expect(result.success, `${route.method} ${route.path}: ${JSON.stringify(result.error?.issues)}`).toBe(true);
    }
  });

  it('are accepted by the real admin routes', async () => {
    const svc = testService();
    const expected: Record<string, number> = {
      '/admin/projects': 201,
      '/admin/projects/{id}': 200,
      '/admin/users': 201,
      '/admin/users/{id}': 200,
      '/admin/users/{id}/external-ids': 201,
      '/admin/keys': 201,
      '/admin/keys/{id}': 200,
      '/admin/budgets': 201,
      '/admin/rate-limits': 201,
      '/admin/grants': 201,
      // No such request: the example got past body validation (a bad one would be a 400).
      '/admin/requests/{id}/approve': 404,
    };
    // In the registry's order: project, then the user in it, then the user's key and budget. A
    // path's {id} is the project, user (or key) created before it.
    const ids: Record<string, string> = { '/admin/projects': 'research', '/admin/users': 'alice' };
    for (const route of withBodies.filter((r) => r.path.startsWith('/admin/'))) {
      const path = route.path.replace('{id}', ids[route.path.slice(0, route.path.indexOf('/{id}'))] ?? '{id}');
      // A grant names the budget created before it.
      const example = route.path === '/admin/grants' ? { ...(route.body!.example as object), budgetId: ids['/admin/budgets'] } : route.body!.example;
      const response = await svc.admin(route.method.toUpperCase(), path, example);
      expect(response.status, `${route.method} ${route.path}: ${await response.clone().text()}`).toBe(expected[route.path]);
      if (route.path === '/admin/keys' || route.path === '/admin/budgets') ids[route.path] = ((await response.json()) as { id: string }).id;
    }
    expect(Object.keys(expected)).toHaveLength(withBodies.filter((r) => r.path.startsWith('/admin/')).length);
  });

  it('get past body validation on the real proxy routes', async () => {
    // No upstream is configured here: the request fails later (no upstream serves the model), but
    // never with a 400 about its body.
    const svc = testService();
    const { secret } = await userWithKey(svc.store, 'alice');
    for (const route of withBodies.filter((r) => r.path.startsWith('/v1/'))) {
      const response = await svc.as(secret, route.path, {
        method: 'POST',
        body: JSON.stringify(route.body!.example),
        headers: { 'content-type': 'application/json' },
      });
      expect(response.status, `${route.path}: ${await response.clone().text()}`).not.toBe(400);
    }
  });

  it('the check-quota example is answered with the key’s status', async () => {
    const svc = testService();
    const { secret } = await userWithKey(svc.store, 'alice');
    const route = ROUTES.find((r) => r.path === '/plugin/check-quota')!;
    const response = await svc.app.request(route.path, {
      method: 'POST',
      body: route.rawBody!.example,
      headers: { 'content-type': 'text/plain', 'x-lobe-plugin-settings': JSON.stringify({ apiKey: secret }) },
    });
    expect(response.status).toBe(200);
    expect(quotaStatusSchema.safeParse(await response.json()).success).toBe(true);
  });
});

describe('the QuotaStatus schema', () => {
  it('matches the real /quota answers, binding budget and all', async () => {
    // A config default (source "config") beside admin budgets of three window kinds.
    const svc = testService({ defaultBudgets: [{ scope: 'user', window: { kind: 'rolling', hours: 24 }, limitTokens: 1000, limitUsd: null, onLimit: 'reject' }] });
    const { secret } = await userWithKey(svc.store, 'alice', 'research');
    for (const body of [
      { scope: 'user:alice', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100000 },
      { scope: 'project:research', window: { kind: 'total' }, limitUsd: 5 },
    ]) {
      expect((await svc.admin('PUT', '/admin/budgets', body)).status).toBe(201);
    }
    const own = (await (await svc.as(secret, '/quota')).json()) as { budgets: unknown[] };
    expect(own.budgets.length).toBeGreaterThanOrEqual(3);
    const parsed = quotaStatusSchema.safeParse(own);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);

    const all = quotaStatusListSchema.safeParse(await (await svc.admin('GET', '/quota')).json());
    expect(all.success, JSON.stringify(all.error?.issues)).toBe(true);
    // No budgets at all: the five binding fields are null.
    const bare = testService();
    const bob = await userWithKey(bare.store, 'bob');
    expect(quotaStatusSchema.safeParse(await (await bare.as(bob.secret, '/quota')).json()).success).toBe(true);
  });
});

describe('GET /docs', () => {
  it('serves a page with no inline code under a strict CSP, and its script', async () => {
    const svc = testService();
    const page = await svc.app.request('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(`${CARD_CSP}; connect-src 'self'`);
    const html = await page.text();
    expect(html).toContain('<script src="/docs/docs.js" defer></script>');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/https?:\/\//); // no CDN

    const script = await svc.app.request('/docs/docs.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain("fetch('/openapi.json')");
    expect((await svc.app.request('/docs/docs.css')).status).toBe(200);
  });
});
