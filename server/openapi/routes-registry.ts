import { z } from 'zod';
import { alertsQuerySchema } from '../admin/report-routes.js';
import { putRateLimitBody } from '../admin/rate-limit-routes.js';
import { postGrantBody } from '../admin/grant-routes.js';
import { approveRequestBody, postRequestBody } from '../requests/request-routes.js';
import { createKeyBody, createProjectBody, createUserBody, linkExternalIdBody, patchKeyBody, patchProjectBody, patchUserBody, putBudgetBody } from '../admin/schemas.js';
import { ownLedgerQuerySchema, ownUsageQuerySchema } from '../quota/history-routes.js';
import { countTokensRequestSchema, messagesRequestSchema } from '../proxy/dialects/anthropic-messages.js';
import { chatRequestSchema } from '../proxy/dialects/openai-chat.js';
import { ollamaChatRequestSchema, ollamaGenerateRequestSchema } from '../proxy/dialects/ollama-chat.js';
import { ollamaEmbeddingsRequestSchema, ollamaEmbedRequestSchema } from '../proxy/dialects/ollama-embed.js';
import { embeddingsRequestSchema } from '../proxy/dialects/openai-embeddings.js';
import { newApiPricingAnswerSchema } from '../proxy/new-api-pricing.js';
import { responsesRequestSchema } from '../proxy/dialects/openai-responses.js';
import { cardImageQuerySchema } from '../../plugin/card-image-route.js';
import { usageQuerySchema } from '../reports/usage-report.js';
import { anthropicErrorSchema, apiErrorSchema, googleErrorSchema, jsonRpcErrorSchema, ollamaErrorSchema, openAIErrorSchema, pluginErrorSchema } from './error-schemas.js';
import { quotaStatusListSchema, quotaStatusSchema } from '../quota/quota-status-schema.js';

/**
 * Every route of the HTTP surface, described once, beside the zod schemas the routes validate with.
 * A registry rather than `@hono/zod-openapi`: that would mean rewriting every route as an OpenAPI
 * route; here the routes stay as they are, the schemas are shared by import, and a test compares
 * this list with the routes the Hono app really has, so neither can drift from the other.
 */

/** Request bodies, converted as zod's *input* (what a client sends: defaults optional). */
export const REQUEST_SCHEMAS = {
  CreateProjectBody: createProjectBody,
  PatchProjectBody: patchProjectBody,
  CreateUserBody: createUserBody,
  PatchUserBody: patchUserBody,
  LinkExternalIdBody: linkExternalIdBody,
  CreateKeyBody: createKeyBody,
  PatchKeyBody: patchKeyBody,
  PutBudgetBody: putBudgetBody,
  PutRateLimitBody: putRateLimitBody,
  PostGrantBody: postGrantBody,
  PostQuotaRequestBody: postRequestBody,
  ApproveRequestBody: approveRequestBody,
  ChatCompletionRequest: chatRequestSchema,
  ResponsesRequest: responsesRequestSchema,
  EmbeddingsRequest: embeddingsRequestSchema,
  AnthropicMessagesRequest: messagesRequestSchema,
  AnthropicCountTokensRequest: countTokensRequestSchema,
  GeminiGenerateBody: z.looseObject({
    contents: z.array(z.unknown()).min(1).describe('the conversation, as Google’s `Content` objects'),
    generationConfig: z.looseObject({ maxOutputTokens: z.number().int().min(1).optional() }).optional().describe('`maxOutputTokens` is clamped to the budget'),
  }),
  OllamaChatRequest: ollamaChatRequestSchema,
  OllamaGenerateRequest: ollamaGenerateRequestSchema,
  OllamaEmbedRequest: ollamaEmbedRequestSchema,
  OllamaEmbeddingsRequest: ollamaEmbeddingsRequestSchema,
} satisfies Record<string, z.ZodType>;

/** Answers with a zod schema; the rest are described in words (no schema exists for them yet). */
export const RESPONSE_SCHEMAS = {
  QuotaStatus: quotaStatusSchema,
  QuotaStatusList: quotaStatusListSchema,
  ApiError: apiErrorSchema,
  OpenAIError: openAIErrorSchema,
  OllamaError: ollamaErrorSchema,
  AnthropicError: anthropicErrorSchema,
  GoogleError: googleErrorSchema,
  PluginError: pluginErrorSchema,
  JsonRpcError: jsonRpcErrorSchema,
  NewApiPricing: newApiPricingAnswerSchema,
  Health: z.strictObject({ ok: z.literal(true), store: z.string().describe('the store kind: sqlite or postgres') }),
  Unhealthy: z.strictObject({ ok: z.literal(false), store: z.string(), error: z.string().describe('why the store did not answer') }),
} satisfies Record<string, z.ZodType>;

export type RequestSchemaName = keyof typeof REQUEST_SCHEMAS;
export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;

/**
 * admin: the admin token. userKey: a personal `lq-` key. quota: either of those. metrics: the admin
 * token or METRICS_TOKEN. none: public (it holds no one's data).
 */
export type Security = 'admin' | 'userKey' | 'quota' | 'metrics' | 'none';

export interface ResponseDoc {
  description: string;
  schema?: ResponseSchemaName;
  /** Defaults to application/json. */
  contentType?: string;
}

export interface ParameterDoc {
  name: string;
  description: string;
  required?: boolean;
}

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI form: `/admin/keys/{id}`. */
  path: string;
  summary: string;
  description?: string;
  tags: string[];
  security: Security;
  pathParams?: ParameterDoc[];
  /** Query parameters from the zod schema the route parses its query with. */
  query?: z.ZodObject;
  /** Words for the query fields whose zod schema carries no `.describe()`. */
  queryNotes?: Record<string, string>;
  /** Query parameters of routes that read them by hand. */
  queryParams?: ParameterDoc[];
  headers?: ParameterDoc[];
  body?: { schema: RequestSchemaName; example: unknown };
  /** A body the route reads as text (not validated by a schema), described by hand. */
  rawBody?: { contentType: string; description: string; example: string };
  responses: Record<number, ResponseDoc>;
}

// Answers that many routes share.
const error = (description: string): ResponseDoc => ({ description, schema: 'ApiError' });
const adminErrors = {
  401: error('missing, unknown or revoked token'),
  403: error('a user key: only the admin token may call this'),
} satisfies Record<number, ResponseDoc>;
const badRequest = error('a field is missing or invalid; the message names it');
const tooLarge = error('body larger than 64 KiB');
const openAI = (description: string): ResponseDoc => ({ description, schema: 'OpenAIError' });
const proxyErrors = {
  400: openAI('invalid body; the message names the field'),
  401: openAI('missing, unknown or revoked key'),
  403: openAI('a personal key naming another user with X-Quota-User'),
  404: openAI('no upstream serves this model (`model_not_found`)'),
  413: openAI('body larger than proxy.maxBodyBytes'),
  429: openAI(
    'a budget is exhausted (`insufficient_quota`, with Retry-After and x-should-retry: false) or a rate limit is hit (`rate_limit_exceeded`)',
  ),
  502: openAI('the upstream failed (costs nothing)'),
  503: openAI('the database cannot be reached, so the request cannot be metered (`store_unavailable`; not sent upstream unless database.failOpen)'),
  504: openAI('the upstream did not answer in time (costs nothing)'),
} satisfies Record<number, ResponseDoc>;
const proxyHeaders: ParameterDoc[] = [
  {
    name: 'X-Quota-User',
    description:
      'with a service key: the end user this request is for (the body’s `user` does the same): the user linked to this external id, else the user with this id, else one created now (users.autoCreate)',
  },
  { name: 'X-Quota-Session', description: 'a session id recorded with the ledger entry, for reports' },
  { name: 'X-Quota-Tags', description: 'comma-separated key=value tags recorded with the ledger entry, e.g. task=summarize,env=dev' },
];
const streamOrJson =
  'the upstream answer, with x-quota-limit, x-quota-remaining, x-quota-reset and x-quota-unit headers; ' +
  'an SSE stream (text/event-stream) when `stream` is true. With refusalStyle "answer" (the key\'s or proxy.refusalStyle), ' +
  'a quota or rate refusal is answered here too: an assistant message whose text is the refusal, with `x-quota-refused` naming its code';
const anthropic = (description: string): ResponseDoc => ({ description, schema: 'AnthropicError' });
const anthropicErrors = {
  400: anthropic('invalid body (max_tokens is required); the message names the field'),
  401: anthropic('missing, unknown or revoked key (x-api-key or Authorization: Bearer)'),
  403: anthropic('a personal key naming another user with X-Quota-User'),
  404: anthropic('no Anthropic upstream serves this model'),
  413: anthropic('body larger than proxy.maxBodyBytes'),
  429: anthropic('a budget is exhausted (with Retry-After and x-should-retry: false) or a rate limit is hit'),
  502: anthropic('the upstream failed (costs nothing)'),
  503: anthropic('the database cannot be reached, so the request cannot be metered'),
  504: anthropic('the upstream did not answer in time (costs nothing)'),
};

const google = (description: string): ResponseDoc => ({ description, schema: 'GoogleError' });
const googleErrors = {
  400: google('invalid body or URL (streamGenerateContent needs ?alt=sse); the message names the field'),
  401: google('missing, unknown or revoked key (x-goog-api-key, ?key= or Authorization: Bearer)'),
  404: google('no Gemini upstream serves this model, or an unknown method'),
  413: google('body larger than proxy.maxBodyBytes'),
  429: google('`RESOURCE_EXHAUSTED`: a budget is exhausted or a rate limit is hit (with Retry-After)'),
  502: google('the upstream failed (costs nothing)'),
  503: google('the database cannot be reached, so the request cannot be metered'),
  504: google('the upstream did not answer in time (costs nothing)'),
};

const ollama = (description: string): ResponseDoc => ({ description, schema: 'OllamaError' });
const ollamaErrors = {
  400: ollama('invalid body; the message names the field'),
  401: ollama('missing, unknown or revoked key'),
  404: ollama('no Ollama upstream serves this model'),
  413: ollama('body larger than proxy.maxBodyBytes'),
  429: ollama('a budget is exhausted or a rate limit is hit (with Retry-After and x-should-retry: false)'),
  502: ollama('the upstream failed (costs nothing)'),
  503: ollama('the database cannot be reached, so the request cannot be metered'),
  504: ollama('the upstream did not answer in time (costs nothing)'),
} satisfies Record<number, ResponseDoc>;
const ndjsonOrJson =
  'the upstream answer, with the x-quota-* headers: newline-delimited JSON (application/x-ndjson) unless the body says `"stream": false` ' +
  '(Ollama streams by default); its last line (`"done": true`) carries the counts, and a stream cut at the budget ends with `done_reason: "length"`';

/**
 * Ollama's API (server/proxy/ollama-routes.ts), at `/ollama` with `Authorization: Bearer lq-…`, and
 * at the key-scoped base URL `/ollama/k/{key}` for clients that send no header.
 */
function ollamaRouteDocs(): RouteDoc[] {
  const metered = [
    { path: 'chat', summary: 'Ollama chat, metered', schema: 'OllamaChatRequest', example: { model: 'llama3.2', messages: [{ role: 'user', content: 'Hello' }] }, ok: ndjsonOrJson },
    { path: 'generate', summary: 'Ollama generate, metered', schema: 'OllamaGenerateRequest', example: { model: 'llama3.2', prompt: 'Why is the sky blue?' }, ok: ndjsonOrJson },
    { path: 'embed', summary: 'Ollama embeddings, metered', schema: 'OllamaEmbedRequest', example: { model: 'nomic-embed-text', input: ['Hello'] }, ok: 'the upstream answer, with the x-quota-* headers; charged its prompt_eval_count' },
    {
      path: 'embeddings', summary: 'Ollama’s older embeddings endpoint (LobeChat calls it), metered', schema: 'OllamaEmbeddingsRequest', example: { model: 'nomic-embed-text', prompt: 'Hello' },
      ok: 'the upstream answer, with the x-quota-* headers; Ollama reports no counts here, so our count of the prompt is charged',
    },
  ] as const;
  const listing = (base: string, security: Security, extra: Partial<RouteDoc>, via: string): RouteDoc[] => [
    {
      method: 'get', path: `${base}/api/tags`, summary: `The Ollama upstreams’ models${via}`, tags: ['proxy', 'ollama'], security, ...extra,
      responses: { 200: { description: 'Ollama’s `{"models": […]}`, each upstream’s cut to its `models` patterns' }, 401: ollamaErrors[401], 502: ollamaErrors[502] },
    },
    {
      method: 'get', path: `${base}/api/version`, summary: `The first Ollama upstream’s version${via}`, tags: ['proxy', 'ollama'], security, ...extra,
      responses: { 200: { description: '`{"version": "…"}`' }, 401: ollamaErrors[401], 404: ollama('no Ollama upstream is configured'), 502: ollamaErrors[502] },
    },
  ];
  const keyInUrl: Partial<RouteDoc> = {
    pathParams: [{ name: 'key', description: 'an lq- key, for clients that cannot send a header (LobeChat’s Ollama provider): it shows in URLs, so give such a client a key of its own', required: true }],
  };
  return [
    ...metered.map(({ path, summary, schema, example, ok }): RouteDoc => ({
      method: 'post', path: `/ollama/api/${path}`, summary, tags: ['proxy', 'ollama'], security: 'userKey',
      headers: proxyHeaders, body: { schema, example }, responses: { 200: { description: ok }, ...ollamaErrors },
    })),
    ...listing('/ollama', 'userKey', {}, ''),
    // The same routes under a key-scoped base URL; their bodies are those above.
    ...metered.map(({ path, summary, example, ok }): RouteDoc => ({
      method: 'post', path: `/ollama/k/{key}/api/${path}`, summary: `${summary} (key in the URL)`, tags: ['proxy', 'ollama'], security: 'none', ...keyInUrl,
      headers: proxyHeaders,
      rawBody: { contentType: 'application/json', description: `as POST /ollama/api/${path}`, example: JSON.stringify(example) },
      responses: { 200: { description: ok }, ...ollamaErrors },
    })),
    ...listing('/ollama/k/{key}', 'none', keyInUrl, ' (key in the URL)'),
    // The bearer routes at the server's root too, as New API lays them out.
    ...metered.map(({ path, summary, example, ok }): RouteDoc => ({
      method: 'post', path: `/api/${path}`, summary: `${summary} (at the root, as New API serves it)`, tags: ['proxy', 'ollama'], security: 'userKey',
      headers: proxyHeaders,
      rawBody: { contentType: 'application/json', description: `as POST /ollama/api/${path}`, example: JSON.stringify(example) },
      responses: { 200: { description: ok }, ...ollamaErrors },
    })),
    ...listing('', 'userKey', {}, ' (at the root)'),
  ];
}

const idParam = (what: string): ParameterDoc[] => [{ name: 'id', description: what, required: true }];
const mcpNotAllowed: ResponseDoc = { description: 'this MCP server is stateless: no stream to open and no session to end; use POST', schema: 'JsonRpcError' };

export const ROUTES: readonly RouteDoc[] = [
  // --- public ---
  {
    method: 'get', path: '/health', summary: 'Health, for load balancers', tags: ['service'], security: 'none',
    responses: {
      200: { description: 'the server is up and reaches its store', schema: 'Health' },
      503: { description: 'the store (PostgreSQL) is unreachable: take this instance out of rotation', schema: 'Unhealthy' },
    },
  },
  {
    method: 'get', path: '/openapi.json', summary: 'This OpenAPI document', tags: ['service'], security: 'none',
    responses: { 200: { description: 'OpenAPI 3.1, generated from the zod schemas the routes validate with' } },
  },
  {
    method: 'get', path: '/docs', summary: 'A readable page of this document', tags: ['service'], security: 'none',
    responses: { 200: { description: 'an HTML page that renders /openapi.json', contentType: 'text/html' } },
  },
  {
    method: 'get', path: '/metrics', summary: 'Prometheus metrics', tags: ['metrics'], security: 'metrics',
    description: 'Per budget: used, limit, ratio, reserved, seconds until reset; request, token and cost counters; the proxy’s own latency.',
    responses: {
      200: { description: 'Prometheus text exposition format', contentType: 'text/plain' },
      401: error('missing, unknown or revoked token'),
      403: error('a user key: /metrics needs the admin token or METRICS_TOKEN'),
    },
  },

  // --- admin: the dashboard (server/dashboard) ---
  {
    method: 'get', path: '/admin', summary: 'The operators’ dashboard page', tags: ['admin'], security: 'none',
    description: 'The page holds no data: it asks for the admin token and calls the admin API with it.',
    responses: { 200: { description: 'an HTML page', contentType: 'text/html' } },
  },
  {
    method: 'get', path: '/me', summary: 'A user’s own page: their quota card, usage by day and model, and newest requests', tags: ['quota'], security: 'none',
    description: 'The page holds no data: it asks for a personal `lq-` key (kept in the tab’s sessionStorage) and reads /quota and /quota/{subject}/usage and /ledger with it.',
    responses: { 200: { description: 'an HTML page', contentType: 'text/html' } },
  },
  {
    method: 'get', path: '/admin/outcomes', summary: 'Settled requests by outcome', tags: ['admin', 'reports'], security: 'admin',
    queryParams: [
      { name: 'from', description: 'ISO 8601 with offset; default: the start of this month (UTC)' },
      { name: 'to', description: 'ISO 8601 with offset; default: now' },
    ],
    responses: { 200: { description: 'counts by outcome (ok, refused, cut off, upstream error, client abort)' }, 400: badRequest, ...adminErrors },
  },

  // --- admin: directory ---
  {
    method: 'post', path: '/admin/projects', summary: 'Create a project', tags: ['admin'], security: 'admin',
    body: { schema: 'CreateProjectBody', example: { id: 'research', name: 'Research' } },
    responses: { 201: { description: 'the project' }, 400: badRequest, ...adminErrors, 409: error('the id is taken'), 413: tooLarge },
  },
  {
    method: 'get', path: '/admin/projects', summary: 'List projects', tags: ['admin'], security: 'admin',
    responses: { 200: { description: '`{"projects": […]}`' }, ...adminErrors },
  },
  {
    method: 'patch', path: '/admin/projects/{id}', summary: 'Rename a project', tags: ['admin'], security: 'admin',
    pathParams: idParam('the project id (it never changes)'),
    body: { schema: 'PatchProjectBody', example: { name: 'Research & Development' } },
    responses: { 200: { description: 'the project' }, 400: badRequest, ...adminErrors, 404: error('no such project'), 413: tooLarge },
  },
  {
    method: 'post', path: '/admin/users', summary: 'Create a user', tags: ['admin'], security: 'admin',
    body: { schema: 'CreateUserBody', example: { id: 'alice', name: 'Alice', projectId: 'research', externalIds: ['user_2NNEqL2nrIRdJ194ndJqAHwEfxC'] } },
    responses: {
      201: { description: 'the user, with its externalIds' }, 400: badRequest, ...adminErrors,
      404: error('unknown projectId'), 409: error('the id is taken, or one of the externalIds is linked to another user'), 413: tooLarge,
    },
  },
  {
    method: 'get', path: '/admin/users', summary: 'List users', tags: ['admin'], security: 'admin',
    responses: { 200: { description: '`{"users": […]}`' }, ...adminErrors },
  },
  {
    method: 'get', path: '/admin/users/{id}', summary: 'One user', tags: ['admin'], security: 'admin',
    pathParams: idParam('the user id'),
    responses: { 200: { description: 'the user' }, ...adminErrors, 404: error('no such user') },
  },
  {
    method: 'patch', path: '/admin/users/{id}', summary: 'Rename a user, or move them to another project', tags: ['admin'], security: 'admin',
    description: 'Requests admitted from now on are charged to the new project (and its budgets apply to them); the ledger keeps the project each past request was charged to.',
    pathParams: idParam('the user id (it never changes)'),
    body: { schema: 'PatchUserBody', example: { name: 'Alice Liddell', projectId: 'research' } },
    responses: { 200: { description: 'the user' }, 400: badRequest, ...adminErrors, 404: error('no such user, or unknown projectId (the message names it)'), 413: tooLarge },
  },
  {
    method: 'post', path: '/admin/users/{id}/external-ids', summary: 'Link an external id (e.g. LobeChat’s user id) to a user', tags: ['admin'], security: 'admin',
    description:
      'A service key naming this external id (X-Quota-User or the body’s `user`) then charges this user. When a user has the external id as its own id ' +
      '(one created on first sight, say), it keeps its history and budgets; requests naming the id charge the linked user from now on (`previousPayer`, `note`).',
    pathParams: idParam('the user id'),
    body: { schema: 'LinkExternalIdBody', example: { externalId: 'user_2Pz0MLFDbEFcSQ4UA5zK8XWyd1b' } },
    responses: {
      201: { description: '`{"user", "externalId", "previousPayer": {"id", "name"} | null, "note"?}`: linked' },
      200: { description: 'the same: it was linked to this user already' },
      400: badRequest, ...adminErrors, 404: error('no such user'), 409: error('the external id is linked to another user (the message names it)'), 413: tooLarge,
    },
  },
  {
    method: 'delete', path: '/admin/users/{id}/external-ids/{externalId}', summary: 'Unlink an external id from a user', tags: ['admin'], security: 'admin',
    pathParams: [...idParam('the user id'), { name: 'externalId', description: 'the external id', required: true }],
    responses: {
      200: { description: '`{"user", "externalId"}`' }, ...adminErrors,
      404: error('no such user, or the external id is linked to no one'), 409: error('the external id is linked to another user'),
    },
  },
  {
    method: 'post', path: '/admin/keys', summary: 'Create a key (its secret is shown once)', tags: ['admin'], security: 'admin',
    body: { schema: 'CreateKeyBody', example: { userId: 'alice', name: 'laptop', refusalStyle: null } },
    responses: {
      201: { description: '`{"id", "key": "lq-…", "prefix", …}`: the only time the secret is shown' },
      400: badRequest, ...adminErrors, 404: error('unknown userId'), 413: tooLarge,
    },
  },
  {
    method: 'get', path: '/admin/keys', summary: 'List keys (never their secrets)', tags: ['admin'], security: 'admin',
    queryParams: [{ name: 'userId', description: 'only this user’s keys' }],
    responses: { 200: { description: '`{"keys": […]}`' }, ...adminErrors },
  },
  {
    method: 'patch', path: '/admin/keys/{id}', summary: 'Change how a key’s refusals are answered', tags: ['admin'], security: 'admin',
    description: 'refusalStyle `answer` turns quota and rate refusals on chat endpoints into an assistant answer; `error` keeps the HTTP error; null follows the config’s proxy.refusalStyle.',
    pathParams: idParam('the key id (key_…)'),
    body: { schema: 'PatchKeyBody', example: { refusalStyle: 'answer' } },
    responses: { 200: { description: 'the key' }, 400: badRequest, ...adminErrors, 404: error('no such key'), 413: tooLarge },
  },
  {
    method: 'delete', path: '/admin/keys/{id}', summary: 'Revoke a key (it stops working at once)', tags: ['admin'], security: 'admin',
    pathParams: idParam('the key id (key_…)'),
    responses: { 200: { description: 'the revoked key' }, ...adminErrors, 404: error('no such key') },
  },

  // --- admin: budgets ---
  {
    method: 'put', path: '/admin/budgets', summary: 'Create or replace a budget', tags: ['admin'], security: 'admin',
    description: 'One budget per scope and window period; a second PUT for the same pair replaces the first.',
    body: {
      schema: 'PutBudgetBody',
      example: { scope: 'user:alice', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100000 },
    },
    responses: {
      200: { description: 'the budget, and under `replaced` the budget it replaced, as it was' },
      201: { description: 'the budget, created (`replaced` is null)' },
      400: badRequest, ...adminErrors, 404: error('the scope’s subject does not exist'), 413: tooLarge,
    },
  },
  {
    method: 'get', path: '/admin/budgets', summary: 'List budgets and the config’s defaults', tags: ['admin'], security: 'admin',
    responses: { 200: { description: '`{"budgets": […], "defaults": […]}`' }, ...adminErrors },
  },
  {
    method: 'delete', path: '/admin/budgets/{id}', summary: 'Delete a budget', tags: ['admin'], security: 'admin',
    pathParams: idParam('the budget id'),
    responses: { 200: { description: 'the deleted budget' }, ...adminErrors, 404: error('no such budget') },
  },

  // --- admin: rate limits ---
  {
    method: 'put', path: '/admin/rate-limits', summary: 'Set a subject’s rate limits', tags: ['admin'], security: 'admin',
    description:
      'Over the config’s `rateLimits` for the subject’s kind: a field given replaces the config’s value (null: no limit), a field left out keeps it. A second PUT for the same scope replaces the first. Every instance applies it from its next admission on.',
    body: { schema: 'PutRateLimitBody', example: { scope: 'user:alice', requestsPerDay: 500, maxConcurrent: 2 } },
    responses: {
      200: { description: 'the limits (`effective`: with the config’s under them), and under `replaced` those replaced' },
      201: { description: 'the limits, set (`replaced` is null)' },
      400: badRequest, ...adminErrors, 404: error('the scope’s subject does not exist'), 413: tooLarge,
    },
  },
  {
    method: 'get', path: '/admin/rate-limits', summary: 'List subjects’ rate limits and the config’s', tags: ['admin'], security: 'admin',
    responses: { 200: { description: '`{"rateLimits": […], "defaults": {"key": …, "user": …, "project": …}}`' }, ...adminErrors },
  },
  {
    method: 'delete', path: '/admin/rate-limits/{scope}', summary: 'Remove a subject’s rate limits (the config’s apply again)', tags: ['admin'], security: 'admin',
    pathParams: [{ name: 'scope', description: 'key:ID, user:ID or project:ID', required: true }],
    responses: { 200: { description: 'the limits removed' }, 400: badRequest, ...adminErrors, 404: error('no rate limits set for that scope') },
  },

  {
    method: 'post', path: '/admin/grants', summary: 'Grant extra room on one budget', tags: ['admin'], security: 'admin',
    description:
      'Tokens and/or dollars added to the budget’s limits from now until the end of its current window (or `until`, if sooner), applied in the same admission as the budget on every instance. Kept after it ends, for audit.',
    body: { schema: 'PostGrantBody', example: { budgetId: 'bud_0123456789abcdef', tokens: 20000, reason: 'release week' } },
    responses: { 201: { description: 'the grant' }, 400: badRequest, ...adminErrors, 404: error('no such budget'), 413: tooLarge },
  },
  {
    method: 'get', path: '/admin/grants', summary: 'List grants, newest first', tags: ['admin'], security: 'admin',
    responses: { 200: { description: '`{"grants": […]}`; `?scope=user:alice` for one subject’s, `?active=true` for those in force now' }, ...adminErrors },
  },

  {
    method: 'get', path: '/admin/requests', summary: 'List increase requests, newest first', tags: ['admin'], security: 'admin',
    queryParams: [
      { name: 'state', description: '`open`, `approved` or `denied`', required: false },
      { name: 'userId', description: 'one user’s requests', required: false },
    ],
    responses: { 200: { description: '`{"requests": […]}`, each with who decided (`decidedBy`: admin, link or policy) and when' }, 400: badRequest, ...adminErrors },
  },
  {
    method: 'post', path: '/admin/requests/{id}/approve', summary: 'Approve an increase request (grants it for the budget’s current window)', tags: ['admin'], security: 'admin',
    pathParams: [{ name: 'id', description: 'the request (`req_…`)', required: true }],
    body: { schema: 'ApproveRequestBody', example: { amount: 20000 } },
    responses: { 200: { description: 'the request, approved, and its grant' }, 400: badRequest, ...adminErrors, 404: error('no such request'), 409: error('already decided, or its budget is gone') },
  },
  {
    method: 'post', path: '/admin/requests/{id}/deny', summary: 'Deny an increase request', tags: ['admin'], security: 'admin',
    pathParams: [{ name: 'id', description: 'the request (`req_…`)', required: true }],
    responses: { 200: { description: 'the request, denied' }, ...adminErrors, 404: error('no such request'), 409: error('already decided') },
  },

  // --- admin: reports ---
  {
    method: 'get', path: '/admin/usage', summary: 'Usage report (JSON or CSV)', tags: ['admin', 'reports'], security: 'admin',
    description: 'Grouped by one dimension or two comma-separated (`user,model`); the range defaults to this month so far in `tz`.',
    query: usageQuerySchema,
    queryNotes: {
      groupBy: 'user, project, key, model or day, or two of them comma-separated (user,model); default user',
      from: 'ISO 8601 with offset; default: the start of this month in tz',
      to: 'ISO 8601 with offset, exclusive; default: now',
      tz: 'IANA time zone of day buckets and of the default range; default UTC',
      format: 'json (default) or csv',
    },
    responses: {
      200: { description: '`{"groupBy", "from", "to", "rows": […], "totals"}`, or CSV with `format=csv`' },
      400: badRequest, ...adminErrors,
    },
  },
  {
    method: 'get', path: '/admin/holds', summary: 'Reservations of requests in flight', tags: ['admin', 'reports'], security: 'admin',
    responses: { 200: { description: '`{"holds": […]}`' }, ...adminErrors },
  },
  {
    method: 'delete', path: '/admin/holds/{id}', summary: 'Release a hold without charging anything', tags: ['admin'], security: 'admin',
    description: 'For a hold that outlived its request: what it set aside is free again at once. The ledger is not touched.',
    pathParams: idParam('the hold id, as listed by GET /admin/holds'),
    responses: { 200: { description: 'the released hold' }, ...adminErrors, 404: error('no such hold (or it was already settled or released)') },
  },
  {
    method: 'get', path: '/admin/alerts', summary: 'Alerts, newest first, with their deliveries', tags: ['admin', 'reports'], security: 'admin',
    query: alertsQuerySchema,
    queryNotes: {
      scope: 'global, project:ID, user:ID or key:ID',
      level: 'a threshold percent, projected, anomaly or overrun',
      window: 'the start of the budget window the alerts belong to (ISO, as listed in windowStart)',
      state: 'pending or delivered',
      limit: 'at most this many (default 100)',
    },
    responses: { 200: { description: '`{"alerts": […]}`' }, 400: badRequest, ...adminErrors },
  },
  {
    method: 'post', path: '/admin/alerts/{id}/retry', summary: 'Retry an alert’s pending deliveries now', tags: ['admin'], security: 'admin',
    description: 'Each delivery still pending is due at once instead of after its backoff, and the sender is woken. One that an instance is sending right now is not sent twice.',
    pathParams: idParam('the alert id (alert_…)'),
    responses: { 200: { description: '`{"id", "retried": N}`: how many deliveries were pending' }, ...adminErrors, 404: error('no such alert'), 409: error('no delivery of it is pending') },
  },

  // --- quota ---
  {
    method: 'post', path: '/quota/requests', summary: 'Ask for more on a budget that binds your requests', tags: ['quota'], security: 'userKey',
    description:
      'Opens an increase request (one open request per user and budget), announced to the alert channels as a `request` alert with signed approve and deny links. `amount` is in the budget’s unit; its default is enough for the rest of the window at the current burn rate: used ÷ elapsed part of the window × remaining part, at least 10 % of the limit. Under `requests.autoApprove` a small request is approved at once (`decidedBy: "policy"`).',
    body: { schema: 'PostQuotaRequestBody', example: { amount: 20000, reason: 'release week' } },
    responses: {
      201: { description: 'the request (with its grant when the policy approved it)' },
      400: badRequest,
      401: error('missing, unknown or revoked token'),
      403: error('the admin token, or a scope that does not bind your requests'),
      404: error('no budget binds your requests'),
      409: error('you already have an open request on that budget'),
      413: tooLarge,
    },
  },
  {
    method: 'get', path: '/requests/{id}/{action}', summary: 'A signed approve or deny link: a page that confirms it', tags: ['quota'], security: 'none',
    description: 'Changes nothing: the page’s button POSTs the same signed parameters. 400, 403, 404, 409 or 410 pages say why a link does not work.',
    pathParams: [
      { name: 'id', description: 'the request', required: true },
      { name: 'action', description: '`approve` or `deny`', required: true },
    ],
    queryParams: [
      { name: 'tokens', description: 'the amount signed into the link', required: true },
      { name: 'micros', description: 'the amount signed into the link (micro-dollars)', required: true },
      { name: 'expires', description: 'epoch ms', required: true },
      { name: 'sig', description: 'HMAC-SHA256 of the request id, action, amounts and expiry', required: true },
    ],
    responses: { 200: { description: 'the confirm page', contentType: 'text/html' } },
  },
  {
    method: 'post', path: '/requests/{id}/{action}', summary: 'Follow a signed link: decide the request', tags: ['quota'], security: 'none',
    description: 'Verifies the signature, the expiry and that the request is still open, then decides it (`decidedBy: "link"`).',
    pathParams: [
      { name: 'id', description: 'the request', required: true },
      { name: 'action', description: '`approve` or `deny`', required: true },
    ],
    rawBody: { contentType: 'application/x-www-form-urlencoded', description: 'the link’s tokens, micros, expires and sig, as the confirm page posts them', example: 'tokens=20000&micros=0&expires=1795000000000&sig=…' },
    responses: { 200: { description: 'a page with the outcome', contentType: 'text/html' } },
  },
  {
    method: 'get', path: '/quota', summary: 'Quota status', tags: ['quota'], security: 'quota',
    description: 'A user key: its own status, the binding budget on top. The admin token: every subject.',
    responses: {
      200: { description: 'a user key’s own status (the admin token gets `{"subjects": [QuotaStatus…]}`, schema QuotaStatusList)', schema: 'QuotaStatus' },
      401: error('missing, unknown or revoked token'),
    },
  },
  {
    method: 'get', path: '/quota/{subject}/usage', summary: 'A user’s usage by local day and model', tags: ['quota'], security: 'quota',
    description: 'A user key reads its own user’s only; the admin token any user’s. The last 30 local days by default; `days` lists every day of the range, with or without usage.',
    pathParams: [{ name: 'subject', description: '`user:ID` or a bare user id', required: true }],
    query: ownUsageQuerySchema,
    responses: {
      200: { description: '`{"subject", "timeZone", "days": […], "groupBy": "day,model", "from", "to", "rows": [{"day", "model", "requests", …tokens, "costUsd"}], "totals"}`' },
      400: badRequest,
      401: error('missing, unknown or revoked token'),
      403: error('a user key naming anyone but its own user'),
      404: error('no such user (admin token)'),
    },
  },
  {
    method: 'get', path: '/quota/{subject}/ledger', summary: 'A user’s newest requests: model, tokens, cost, outcome', tags: ['quota'], security: 'quota',
    description: 'Never text: the ledger keeps none, and this list leaves out the session and tags a client attached. A user key reads its own user’s only; the admin token any user’s.',
    pathParams: [{ name: 'subject', description: '`user:ID` or a bare user id', required: true }],
    query: ownLedgerQuerySchema,
    responses: {
      200: { description: '`{"subject", "entries": [{"at", "model", "inputTokens", "outputTokens", "cachedTokens", "reasoningTokens", "totalTokens", "costUsd", "outcome", "source"}]}`' },
      400: badRequest,
      401: error('missing, unknown or revoked token'),
      403: error('a user key naming anyone but its own user'),
      404: error('no such user (admin token)'),
    },
  },
  {
    method: 'get', path: '/quota/{subject}', summary: 'Quota status of one subject', tags: ['quota'], security: 'quota',
    pathParams: [{ name: 'subject', description: '`user:ID`, `project:ID`, `key:ID`, `global`, or a bare user id', required: true }],
    responses: {
      200: { description: 'the subject’s status', schema: 'QuotaStatus' },
      400: error('not a subject'),
      401: error('missing, unknown or revoked token'),
      403: error('a user key naming anyone but itself or its own user'),
      404: error('no such subject'),
    },
  },

  // --- proxy ---
  {
    method: 'post', path: '/v1/chat/completions', summary: 'OpenAI chat completions, metered', tags: ['proxy'], security: 'userKey',
    headers: proxyHeaders,
    body: { schema: 'ChatCompletionRequest', example: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] } },
    responses: { 200: { description: streamOrJson }, ...proxyErrors },
  },
  {
    method: 'post', path: '/v1/responses', summary: 'OpenAI Responses API, metered', tags: ['proxy'], security: 'userKey',
    headers: proxyHeaders,
    body: { schema: 'ResponsesRequest', example: { model: 'gpt-4o-mini', input: 'Hello' } },
    responses: { 200: { description: streamOrJson }, ...proxyErrors },
  },
  {
    method: 'post', path: '/v1/embeddings', summary: 'OpenAI embeddings, metered', tags: ['proxy'], security: 'userKey',
    headers: proxyHeaders,
    body: { schema: 'EmbeddingsRequest', example: { model: 'text-embedding-3-small', input: 'Hello' } },
    responses: { 200: { description: 'the upstream answer, with the x-quota-* headers' }, ...proxyErrors },
  },
  {
    method: 'post', path: '/v1/messages', summary: 'Anthropic Messages, metered', tags: ['proxy'], security: 'userKey',
    description:
      'Anthropic’s own API, for an `api: "anthropic"` upstream: the key as `x-api-key: lq-…` (as the Anthropic SDK sends it) or a bearer token; `anthropic-version` and `anthropic-beta` go upstream as sent. Usage from `message_start` and `message_delta`, cache reads and 5-minute / 1-hour writes priced apart; `max_tokens` clamped to the budget (a thinking budget with it).',
    headers: proxyHeaders,
    body: { schema: 'AnthropicMessagesRequest', example: { model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'Hello' }] } },
    responses: { 200: { description: 'the message, or its event stream with `"stream": true`' }, ...anthropicErrors },
  },
  {
    method: 'post', path: '/v1/messages/count_tokens', summary: 'Anthropic token counting, passed through unmetered', tags: ['proxy'], security: 'userKey',
    body: { schema: 'AnthropicCountTokensRequest', example: { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hello' }] } },
    responses: { 200: { description: 'the upstream’s `{"input_tokens": n}`' }, 401: anthropicErrors[401], 404: anthropicErrors[404], 502: anthropicErrors[502] },
  },
  {
    method: 'post', path: '/v1beta/models/{modelAction}', summary: 'Gemini generateContent / streamGenerateContent, metered; countTokens passed through', tags: ['proxy', 'gemini'], security: 'userKey',
    description:
      'Google’s own API, for an `api: "gemini"` upstream, as @google/genai calls it: `{model}:generateContent`, `{model}:streamGenerateContent?alt=sse` (metered; usage from `usageMetadata`, thoughts and cached content included) and `{model}:countTokens` (unmetered). The key as `x-goog-api-key`, `?key=` or a bearer token.',
    pathParams: [{ name: 'modelAction', description: 'the model and the method, e.g. `gemini-2.5-flash:streamGenerateContent`', required: true }],
    headers: proxyHeaders,
    body: { schema: 'GeminiGenerateBody', example: { contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] } },
    responses: { 200: { description: 'the answer, or its server-sent events with ?alt=sse' }, ...googleErrors },
  },
  {
    method: 'get', path: '/v1beta/models', summary: 'The Gemini upstreams’ models', tags: ['proxy', 'gemini'], security: 'userKey',
    responses: { 200: { description: 'Google’s `{"models": […]}`, each upstream’s cut to its `models` patterns (paged when the client asks for a pageSize)' }, 401: googleErrors[401], 502: googleErrors[502] },
  },
  {
    method: 'get', path: '/v1beta/models/{model}', summary: 'One Gemini model', tags: ['proxy', 'gemini'], security: 'userKey',
    pathParams: [{ name: 'model', description: 'the model id, e.g. gemini-2.5-flash', required: true }],
    responses: { 200: { description: 'Google’s model object' }, 401: googleErrors[401], 404: googleErrors[404], 502: googleErrors[502] },
  },
  {
    method: 'get', path: '/api/pricing', summary: 'Model prices in New API’s shape', tags: ['proxy'], security: 'none',
    description:
      'For LobeChat’s New API provider, which shows them in its model list: every priced model an upstream serves, input as `model_ratio` × $2 per 1M tokens, output as input × `completion_ratio`. Public, as New API’s is (an Authorization header is accepted and not checked). A long-context tier is not shown: the base prices are.',
    responses: { 200: { description: 'New API’s `{"success": true, "data": […]}`', schema: 'NewApiPricing' } },
  },
  {
    method: 'get', path: '/v1/models', summary: 'The upstreams’ models', tags: ['proxy'], security: 'userKey',
    responses: { 200: { description: 'OpenAI’s `{"object": "list", "data": […]}`' }, 401: proxyErrors[401], 502: proxyErrors[502] },
  },
  ...ollamaRouteDocs(),

  // --- LobeChat plugin and MCP ---
  {
    method: 'get', path: '/manifest.json', summary: 'The LobeChat plugin manifest (CORS open)', tags: ['plugin'], security: 'none',
    responses: { 200: { description: 'the manifest, with absolute URLs from PUBLIC_URL or the request’s origin' } },
  },
  {
    method: 'post', path: '/plugin/check-quota', summary: 'checkQuota, called by LobeChat’s plugin gateway', tags: ['plugin'], security: 'none',
    description: 'The identity is the `lq-` key in the plugin settings header, not an Authorization header.',
    headers: [{ name: 'X-Lobe-Plugin-Settings', description: 'JSON: `{"apiKey": "lq-…"}`', required: true }],
    rawBody: { contentType: 'text/plain', description: 'the tool-call arguments as JSON text: `{}` or nothing', example: '{}' },
    responses: {
      200: { description: 'the key’s own /quota status', schema: 'QuotaStatus' },
      422: {
        description: 'PluginSettingsInvalid (no key, not an lq- key, unknown or revoked) or PluginApiParamsError (arguments not a JSON object)',
        schema: 'PluginError',
      },
      405: { description: 'MethodNotAllowed: only POST (any other method)', schema: 'PluginError' },
    },
  },
  {
    method: 'post', path: '/plugin/request-increase', summary: 'requestQuotaIncrease, called by LobeChat’s plugin gateway', tags: ['plugin'], security: 'none',
    description: 'Opens an increase request for the key holder (as POST /quota/requests does). The identity is the `lq-` key in the plugin settings header.',
    headers: [{ name: 'X-Lobe-Plugin-Settings', description: 'JSON: `{"apiKey": "lq-…"}`', required: true }],
    rawBody: { contentType: 'text/plain', description: 'the tool-call arguments as JSON text: `{"amount"?, "reason"?, "scope"?}`', example: '{"amount": 20000, "reason": "a deadline"}' },
    responses: {
      200: { description: 'the key’s own /quota status (for the card), with `request` (the request made) and `message` (a sentence for the model)' },
      422: {
        description: 'PluginSettingsInvalid (no key, not an lq- key, unknown or revoked) or PluginApiParamsError (bad arguments, or the request was not made: e.g. one is open already)',
        schema: 'PluginError',
      },
    },
  },
  {
    method: 'post', path: '/mcp', summary: 'MCP over streamable HTTP (stateless): tool check_quota', tags: ['plugin'], security: 'userKey',
    rawBody: {
      contentType: 'application/json',
      description: 'a JSON-RPC message of the Model Context Protocol',
      example: '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
    },
    responses: {
      200: { description: 'the JSON-RPC answer' },
      401: { description: 'missing, unknown or revoked key, or the admin token', schema: 'JsonRpcError' },
    },
  },
  {
    method: 'get', path: '/plugin/card-image', summary: 'The quota card as a PNG (what check_quota sends over MCP)', tags: ['plugin'], security: 'userKey',
    description: 'The key holder’s own status, drawn server-side: 640×N CSS pixels at 2×. Never cached (`Cache-Control: no-store`).',
    query: cardImageQuerySchema,
    headers: [{ name: 'Accept-Language', description: 'the default locale when `locale` is not given: zh… is Chinese, else English' }],
    responses: {
      200: { description: 'the card', contentType: 'image/png' },
      400: badRequest,
      401: error('missing, unknown or revoked key, or the admin token (it has no quota of its own)'),
    },
  },
  { method: 'get', path: '/mcp', summary: 'Not supported (stateless server)', tags: ['plugin'], security: 'none', responses: { 405: mcpNotAllowed } },
  { method: 'delete', path: '/mcp', summary: 'Not supported (stateless server)', tags: ['plugin'], security: 'none', responses: { 405: mcpNotAllowed } },
];
