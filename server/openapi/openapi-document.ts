import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { projectRoot } from '../../plugin/project-root.js';
import {
  REQUEST_SCHEMAS,
  RESPONSE_SCHEMAS,
  ROUTES,
  type ParameterDoc,
  type ResponseDoc,
  type RouteDoc,
  type Security,
} from './routes-registry.js';

type Json = Record<string, unknown>;

const COMPONENT = (name: string) => `#/components/schemas/${name}`;

/** `$schema` and zod's fragment-only `$id` mean nothing inside an OpenAPI document (and `$id` would rebase refs). */
function embeddable({ $schema: _s, $id: _i, ...schema }: Json): Json {
  return schema;
}

/**
 * Every named schema as components, its references to the others as `$ref`s into components. Request
 * bodies are converted as zod's input (a field with a default is optional to the client), answers as
 * its output; unrepresentable parts (transforms) become `{}` rather than failing the whole document.
 */
function componentSchemas(): Record<string, Json> {
  const convert = (schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> => {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
    const { schemas: out } = z.toJSONSchema(registry, { io, uri: COMPONENT, unrepresentable: 'any' });
    return Object.fromEntries(Object.entries(out).map(([id, schema]) => [id, embeddable(schema as Json)]));
  };
  return { ...convert(REQUEST_SCHEMAS, 'input'), ...convert(RESPONSE_SCHEMAS, 'output') };
}

/** A query schema's fields as `in: query` parameters (each a string on the wire; zod coerces). */
function queryParameters(schema: z.ZodObject, notes: Record<string, string> = {}): Json[] {
  const json = embeddable(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json);
  const properties = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, { description, ...fieldSchema }]) => {
    const words = typeof description === 'string' ? description : notes[name];
    return { name, in: 'query', required: required.has(name), ...(words === undefined ? {} : { description: words }), schema: fieldSchema };
  });
}

const parameter = (where: 'path' | 'query' | 'header') => (p: ParameterDoc): Json => ({
  name: p.name,
  in: where,
  // OpenAPI requires path parameters to be required.
  required: where === 'path' ? true : (p.required ?? false),
  description: p.description,
  schema: { type: 'string' },
});

const SECURITY: Record<Security, Json[]> = {
  admin: [{ adminToken: [] }],
  userKey: [{ userKey: [] }],
  quota: [{ userKey: [] }, { adminToken: [] }],
  metrics: [{ adminToken: [] }, { metricsToken: [] }],
  none: [],
};

function response({ description, schema, contentType }: ResponseDoc): Json {
  if (schema !== undefined) return { description, content: { [contentType ?? 'application/json']: { schema: { $ref: COMPONENT(schema) } } } };
  if (contentType !== undefined) return { description, content: { [contentType]: { schema: { type: 'string' } } } };
  return { description };
}

function requestBody(route: RouteDoc): Json | undefined {
  if (route.body) {
    return {
      required: true,
      content: { 'application/json': { schema: { $ref: COMPONENT(route.body.schema) }, example: route.body.example } },
    };
  }
  if (route.rawBody) {
    const { contentType, description, example } = route.rawBody;
    return { required: false, description, content: { [contentType]: { schema: { type: 'string' }, example } } };
  }
  return undefined;
}

function operation(route: RouteDoc): Json {
  const parameters = [
    ...(route.pathParams ?? []).map(parameter('path')),
    ...(route.query ? queryParameters(route.query, route.queryNotes) : []),
    ...(route.queryParams ?? []).map(parameter('query')),
    ...(route.headers ?? []).map(parameter('header')),
  ];
  const body = requestBody(route);
  return {
    operationId: `${route.method}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    tags: route.tags,
    security: SECURITY[route.security],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body === undefined ? {} : { requestBody: body }),
    responses: Object.fromEntries(Object.entries(route.responses).map(([status, r]) => [status, response(r)])),
  };
}

/** Read once: the version is the package's, not something to keep in step by hand. */
const PACKAGE = JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { name: string; version: string; description?: string };

/** The OpenAPI 3.1 document of every route; `serverUrl` is PUBLIC_URL or the origin the request came to. */
export function openApiDocument(serverUrl: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of ROUTES) paths[route.path] = { ...paths[route.path], [route.method]: operation(route) };
  return {
    openapi: '3.1.0',
    info: { title: PACKAGE.name, version: PACKAGE.version, ...(PACKAGE.description ? { description: PACKAGE.description } : {}) },
    servers: [{ url: serverUrl }],
    tags: [
      { name: 'service', description: 'health, this document' },
      { name: 'admin', description: 'projects, users, keys and budgets (admin token)' },
      { name: 'reports', description: 'usage, holds and alerts (admin token)' },
      { name: 'quota', description: 'where a user or subject stands' },
      { name: 'proxy', description: 'the metered OpenAI-compatible API (a personal or service lq- key)' },
      { name: 'plugin', description: 'LobeChat plugin and MCP' },
      { name: 'metrics', description: 'Prometheus' },
    ],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token printed on first start (or ADMIN_TOKEN)' },
        userKey: { type: 'http', scheme: 'bearer', description: 'a personal or service key, `lq-…`, from POST /admin/keys' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN: reads /metrics and nothing else' },
      },
    },
  };
}
