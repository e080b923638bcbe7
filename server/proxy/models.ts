import type { Context } from 'hono';
import type { ProxyServices } from './admit-request.js';
import { anthropicErrorBody, ANTHROPIC_CLIENT_KEY } from './dialects/anthropic-messages.js';
import { openAIErrorBody, renderProxyFailure } from './error-shape.js';
import { authenticate } from './identity.js';
import { OpenAIError } from './openai-error.js';
import type { UpstreamApi } from './upstream-api.js';
import { callUpstream } from './upstream-call.js';
import type { Upstream } from './upstreams.js';

/** How long one upstream's model list is reused (LobeChat refreshes its model list often). */
export const MODEL_LIST_TTL_MS = 60_000;
/** A model list is small: an upstream that takes longer than this is skipped for this call. */
export const MODEL_LIST_TIMEOUT_MS = 10_000;

/** One entry of `GET /models`, as the upstream gave it (`id`, `object`, `created`, `owned_by`, …). */
export type ModelEntry = Record<string, unknown> & { id: string };

interface CachedList {
  at: number;
  list: Promise<unknown[]>;
}

/** Per Upstream instance, so a fresh set of upstreams (a new app, a test) starts empty. */
const lists = new WeakMap<Upstream, CachedList>();

/**
 * Where OpenAI's and Anthropic's APIs list their models under an upstream's base URL: both as a
 * `data` array of entries with an `id` (Anthropic's base URL has no `/v1`, and it pages at 20
 * unless asked for more).
 */
const LIST_REQUESTS: Partial<Record<UpstreamApi, { path: string; headers?: Record<string, string> }>> = {
  openai: { path: '/models' },
  anthropic: { path: '/v1/models?limit=1000', headers: { 'anthropic-version': '2023-06-01' } },
};

async function fetchModelList(upstream: Upstream): Promise<ModelEntry[]> {
  const signal = AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
  const { path, headers } = LIST_REQUESTS[upstream.api] ?? { path: '/models' };
  const response = await callUpstream(upstream, path, { method: 'GET', signal, ...(headers ? { headers } : {}) });
  const text = await response.body.text();
  if (response.statusCode >= 400) throw new Error(`The upstream "${upstream.name}" answered ${response.statusCode} to GET ${path}.`);
  let json: { data?: unknown };
  try {
    json = JSON.parse(text) as { data?: unknown };
  } catch {
    throw new Error(`The upstream "${upstream.name}" answered GET ${path} with something that is not JSON.`);
  }
  if (!Array.isArray(json?.data)) throw new Error(`The upstream "${upstream.name}" answered GET ${path} without a "data" list.`);
  return json.data.filter((m): m is ModelEntry => typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string');
}

/**
 * An upstream's own model list as `fetch` gets it (each API lists its models its own way), from the
 * cache when it is younger than a minute. Concurrent callers share one request; a failure is not
 * cached. An upstream speaks one API, so it has one kind of list.
 */
function cachedModelList<T>(upstream: Upstream, now: number, fetch: (upstream: Upstream) => Promise<T[]>): Promise<T[]> {
  const cached = lists.get(upstream);
  if (cached && now - cached.at < MODEL_LIST_TTL_MS && now >= cached.at) return cached.list as Promise<T[]>;
  const list = fetch(upstream);
  const entry = { at: now, list };
  lists.set(upstream, entry);
  list.catch(() => {
    if (lists.get(upstream) === entry) lists.delete(upstream);
  });
  return list;
}

/**
 * The models these upstreams serve: each one's own list (`fetch`, cached), cut to the models it is
 * configured to serve, merged by id (`idOf`) in the upstreams' order, the first upstream winning a
 * duplicate id. An upstream that cannot answer is left out; when none can, 502.
 */
export async function servedModels<T>(upstreams: Upstream[], now: number, fetch: (upstream: Upstream) => Promise<T[]>, idOf: (entry: T) => string): Promise<Map<string, T>> {
  const results = await Promise.allSettled(upstreams.map((u) => cachedModelList(u, now, fetch)));
  const merged = new Map<string, T>();
  const failures: string[] = [];
  results.forEach((result, i) => {
    const upstream = upstreams[i];
    if (!upstream) return;
    if (result.status === 'rejected') {
      failures.push(result.reason instanceof Error ? result.reason.message : `The upstream "${upstream.name}" failed: ${String(result.reason)}`);
      return;
    }
    for (const model of result.value) {
      const id = idOf(model);
      if (upstream.serves(id) && !merged.has(id)) merged.set(id, model);
    }
  });
  if (upstreams.length > 0 && failures.length === upstreams.length) {
    throw new OpenAIError(502, 'server_error', 'upstream_unreachable', `No upstream could list its models. ${failures.join(' ')}`);
  }
  return merged;
}

/**
 * `GET /v1/models`: every upstream's own list, each cut to the models it is configured to serve,
 * merged (the first upstream wins a duplicate id) and sorted by id. An upstream that cannot answer
 * is left out; when none can, 502. OpenAI's and Anthropic's APIs share the path: a request with
 * `anthropic-version` (the Anthropic SDK's, and LobeChat's Claude model list) gets the Anthropic
 * upstreams' models in Anthropic's shape.
 */
export function models(services: ProxyServices) {
  return async function models(c: Context) {
    const anthropic = c.req.header('anthropic-version') !== undefined;
    try {
      await authenticate(c, services.store, anthropic ? ANTHROPIC_CLIENT_KEY : undefined);
      const upstreams = services.upstreams.list.filter((u) => u.api === (anthropic ? 'anthropic' : 'openai'));
      const merged = await servedModels(upstreams, services.clock.now(), fetchModelList, (model) => model.id);
      const data = [...merged.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (!anthropic) return c.json({ object: 'list', data });
      return c.json({ data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
    } catch (error) {
      return renderProxyFailure(c, error, anthropic ? anthropicErrorBody : openAIErrorBody);
    }
  };
}
