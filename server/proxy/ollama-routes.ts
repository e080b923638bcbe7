import { Hono, type Context } from 'hono';
import type { AppEnv } from '../http/app-env.js';
import { loggablePath } from '../http/loggable-path.js';
import { isRecord } from '../util/is-record.js';
import type { ProxyServices } from './admit-request.js';
import type { ClientKey, Dialect } from './dialects/dialect.js';
import { ollamaChat, ollamaGenerate } from './dialects/ollama-chat.js';
import { KEY_IN_URL, OLLAMA_BEARER, ollamaErrorBody } from './dialects/ollama-common.js';
import { ollamaEmbed, ollamaEmbeddings } from './dialects/ollama-embed.js';
import { renderErrorIn, renderProxyFailure } from './error-shape.js';
import { authenticate } from './identity.js';
import { meteredRoute } from './metered-route.js';
import { getUpstreamJson, MODEL_LIST_TIMEOUT_MS, servedModels } from './model-lists.js';
import { OpenAIError } from './openai-error.js';
import { callUpstream } from './upstream-call.js';
import type { Upstream } from './upstreams.js';

/**
 * Ollama's API, for the `ollama` upstreams, mounted at `/ollama` (so a client's base URL, its
 * `host`, is `<lobe-quota>/ollama`): `POST /api/chat`, `/api/generate`, `/api/embed` and the older
 * `/api/embeddings`, metered; `GET /api/tags` and `/api/version`. Each is served twice: with the
 * key in `Authorization: Bearer lq-…` (ollama-js given `headers`, curl), and under a key-scoped base
 * URL `/ollama/k/<lq-key>` for clients that send no credentials (LobeChat's Ollama provider; see
 * KEY_IN_URL for what that costs). Anything else under `/ollama` is a 404; errors are Ollama's
 * `{"error": "…"}`.
 */
export function ollamaRoutes(services: ProxyServices) {
  const app = new Hono<AppEnv>();
  addOllamaApi(app, services, '/k/:key', KEY_IN_URL);
  addOllamaApi(app, services, '', OLLAMA_BEARER);
  // A 404 in Ollama's error shape; the path as logs show it, as it may hold a key.
  app.all('*', (c) => c.json({ error: `${c.req.method} ${loggablePath(c.req.path)} is not part of the Ollama API served here` }, 404));
  return app;
}

/**
 * The same API with a bearer key at the server's root (`/api/chat`, …), where New API's layout has
 * it, for a client that takes lobe-quota's base URL itself as its Ollama host. No catch-all: the
 * root's other paths are the service's own.
 */
export function ollamaRootRoutes(services: ProxyServices) {
  const app = new Hono<AppEnv>();
  addOllamaApi(app, services, '', OLLAMA_BEARER);
  return app;
}

function addOllamaApi(app: Hono<AppEnv>, services: ProxyServices, prefix: string, clientKey: ClientKey): void {
  const metered = <Request, State>(dialect: Dialect<Request, State>) => meteredRoute(services, { ...dialect, clientKey });
  app
    .post(`${prefix}/api/chat`, metered(ollamaChat))
    .post(`${prefix}/api/generate`, metered(ollamaGenerate))
    .post(`${prefix}/api/embed`, metered(ollamaEmbed))
    .post(`${prefix}/api/embeddings`, metered(ollamaEmbeddings))
    .get(`${prefix}/api/tags`, inOllamaShape(tags(services, clientKey)))
    .get(`${prefix}/api/version`, inOllamaShape(version(services, clientKey)));
}

const inOllamaShape = (handler: (c: Context) => Promise<Response>) => (c: Context) => handler(c).catch((error: unknown) => renderProxyFailure(c, error, ollamaErrorBody));

/** One entry of `GET /api/tags`: `name`, `model`, `size`, `digest`, `details`… as the upstream gave it. */
type TagEntry = Record<string, unknown> & { name: string };

async function upstreamTags(upstream: Upstream): Promise<TagEntry[]> {
  const json = await getUpstreamJson(upstream, '/api/tags');
  const models = isRecord(json) ? json.models : undefined;
  if (!Array.isArray(models)) throw new Error(`The upstream "${upstream.name}" answered GET /api/tags without a "models" list.`);
  return models.filter((m): m is TagEntry => isRecord(m) && typeof m.name === 'string');
}

/**
 * `GET /api/tags`: the models of every `ollama` upstream (each list reused for a minute, as the
 * other APIs' are), each cut to the models it is configured to serve (its `models` patterns),
 * merged in order (the first upstream wins a name). An upstream that cannot answer is left out;
 * when none can, 502.
 */
function tags(services: ProxyServices, clientKey: ClientKey) {
  return async function tags(c: Context): Promise<Response> {
    await authenticate(c, services.store, clientKey);
    const upstreams = services.upstreams.list.filter((u) => u.api === 'ollama');
    const merged = await servedModels(upstreams, services.clock.now(), upstreamTags, (model) => model.name);
    return c.json({ models: [...merged.values()] });
  };
}

/** `GET /api/version`: the first `ollama` upstream's, which clients read to know what the server can do. */
function version(services: ProxyServices, clientKey: ClientKey) {
  return async function version(c: Context): Promise<Response> {
    await authenticate(c, services.store, clientKey);
    const upstream = services.upstreams.list.find((u) => u.api === 'ollama');
    if (!upstream) return renderErrorIn(c, new OpenAIError(404, 'invalid_request_error', null, 'No Ollama upstream is configured here.'), ollamaErrorBody);
    const response = await callUpstream(upstream, '/api/version', { method: 'GET', signal: AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS) });
    const text = await response.body.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Checked below.
    }
    if (response.statusCode >= 400 || !isRecord(json) || typeof json.version !== 'string') {
      throw new OpenAIError(502, 'server_error', 'upstream_failed', `The upstream "${upstream.name}" did not tell its version (HTTP ${response.statusCode}).`);
    }
    return c.json({ version: json.version });
  };
}
