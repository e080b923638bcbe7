import type { Context } from 'hono';
import type { ProxyServices } from './admit-request.js';
import { anthropicErrorBody, ANTHROPIC_CLIENT_KEY } from './dialects/anthropic-messages.js';
import { openAIErrorBody, renderProxyFailure } from './error-shape.js';
import { geminiModels } from './gemini-models.js';
import { authenticate } from './identity.js';
import { getUpstreamJson, servedModels } from './model-lists.js';
import type { UpstreamApi } from './upstream-api.js';
import type { Upstream } from './upstreams.js';

/** One entry of `GET /models`, as the upstream gave it (`id`, `object`, `created`, `owned_by`, …). */
export type ModelEntry = Record<string, unknown> & { id: string };

export { MODEL_LIST_TTL_MS } from './model-lists.js';

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
  const { path, headers } = LIST_REQUESTS[upstream.api] ?? { path: '/models' };
  const json = (await getUpstreamJson(upstream, path, headers ? { headers } : {})) as { data?: unknown } | null;
  if (!Array.isArray(json?.data)) throw new Error(`The upstream "${upstream.name}" answered GET ${path} without a "data" list.`);
  return json.data.filter((m): m is ModelEntry => typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string');
}

/**
 * `GET /v1/models`: every upstream's own list, each cut to the models it is configured to serve,
 * merged (the first upstream wins a duplicate id) and sorted by id. An upstream that cannot answer
 * is left out; when none can, 502. OpenAI's and Anthropic's APIs share the path: a request with
 * `anthropic-version` (the Anthropic SDK's, and LobeChat's Claude model list) gets the Anthropic
 * upstreams' models in Anthropic's shape. Any other gets OpenAI's list, in which the models served
 * natively in Anthropic's or Gemini's API follow the OpenAI upstreams' own, marked with the API
 * that serves them (`supported_endpoint_types`, as New API marks them): LobeChat's New API provider
 * takes its model list from here and sends each model to the API that serves it.
 */
export function models(services: ProxyServices) {
  return async function models(c: Context) {
    const anthropic = c.req.header('anthropic-version') !== undefined;
    try {
      await authenticate(c, services.store, anthropic ? ANTHROPIC_CLIENT_KEY : undefined);
      const now = services.clock.now();
      if (anthropic) {
        const data = sortedById(await servedModels(upstreamsOf(services, 'anthropic'), now, fetchModelList, (model) => model.id));
        return c.json({ data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
      }
      return c.json({ object: 'list', data: sortedById(await everyModel(services, now)) });
    } catch (error) {
      return renderProxyFailure(c, error, anthropic ? anthropicErrorBody : openAIErrorBody);
    }
  };
}

const upstreamsOf = (services: ProxyServices, api: UpstreamApi) => services.upstreams.list.filter((u) => u.api === api);

const sortedById = (models: Map<string, ModelEntry>): ModelEntry[] => [...models.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/** A model served natively in another API, as an entry of OpenAI's list. */
const nativeEntry = (id: string, ownedBy: string, api: 'anthropic' | 'gemini', created: number): ModelEntry => ({ id, object: 'model', created, owned_by: ownedBy, supported_endpoint_types: [api] });

const secondsOf = (date: unknown): number => {
  const ms = typeof date === 'string' ? Date.parse(date) : Number.NaN;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
};

/**
 * The OpenAI upstreams' models as they described them, then the Anthropic and Gemini upstreams'
 * (an id the OpenAI upstreams list keeps their entry). Each API's upstreams may fail on their own;
 * only when every API that has upstreams failed is it a 502.
 */
async function everyModel(services: ProxyServices, now: number): Promise<Map<string, ModelEntry>> {
  const lists: Array<[UpstreamApi, () => Promise<ModelEntry[]>]> = [
    ['openai', async () => [...(await servedModels(upstreamsOf(services, 'openai'), now, fetchModelList, (m) => m.id)).values()]],
    [
      'anthropic',
      async () => [...(await servedModels(upstreamsOf(services, 'anthropic'), now, fetchModelList, (m) => m.id)).values()].map((m) => nativeEntry(m.id, 'anthropic', 'anthropic', secondsOf(m.created_at))),
    ],
    ['gemini', async () => [...(await geminiModels(services)).keys()].map((id) => nativeEntry(id, 'google', 'gemini', 0))],
  ];
  const asked = lists.filter(([api]) => upstreamsOf(services, api).length > 0);
  const results = await Promise.allSettled(asked.map(([, list]) => list()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (asked.length > 0 && failed.length === asked.length) throw failed[0]?.reason;
  const merged = new Map<string, ModelEntry>();
  for (const result of results) {
    if (result.status === 'fulfilled') for (const model of result.value) if (!merged.has(model.id)) merged.set(model.id, model);
  }
  return merged;
}
