import type { Context } from 'hono';
import { isRecord } from '../util/is-record.js';
import type { ProxyServices } from './admit-request.js';
import { GEMINI_CLIENT_KEY } from './dialects/gemini.js';
import { authenticate } from './identity.js';
import { getUpstreamJson, MODEL_LIST_TIMEOUT_MS, servedModels } from './model-lists.js';
import { invalidRequest, OpenAIError } from './openai-error.js';
import type { Upstream } from './upstreams.js';

/** One entry of Gemini's `GET /v1beta/models`, as the upstream gave it (`name` is `models/{id}`). */
export type GeminiModelEntry = Record<string, unknown> & { name: string };

/** The largest page Google serves, which the proxy asks for. */
const UPSTREAM_PAGE_SIZE = 1_000;
/** Google's page size when a client names none (or 0). */
const GOOGLE_DEFAULT_PAGE_SIZE = 50;
/** More pages than any upstream has: a list that never ends is cut here. */
const MAX_UPSTREAM_PAGES = 20;

const idOf = (model: GeminiModelEntry): string => model.name.replace(/^models\//, '');

/** A Gemini upstream's whole list: its pages, in order. */
async function fetchGeminiModels(upstream: Upstream): Promise<GeminiModelEntry[]> {
  const signal = AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
  const models: GeminiModelEntry[] = [];
  let pageToken: string | null = null;
  for (let page = 0; page < MAX_UPSTREAM_PAGES; page++) {
    const path = `/v1beta/models?pageSize=${UPSTREAM_PAGE_SIZE}${pageToken === null ? '' : `&pageToken=${encodeURIComponent(pageToken)}`}`;
    // One deadline for every page.
    const json = await getUpstreamJson(upstream, path, { signal, shownPath: '/v1beta/models' });
    if (!isRecord(json)) throw new Error(`The upstream "${upstream.name}" answered GET /v1beta/models without a JSON object.`);
    // Google leaves `models` out of an empty page.
    const entries = Array.isArray(json.models) ? (json.models as unknown[]) : [];
    for (const entry of entries) if (isRecord(entry) && typeof entry.name === 'string') models.push(entry as GeminiModelEntry);
    pageToken = typeof json.nextPageToken === 'string' && json.nextPageToken !== '' ? json.nextPageToken : null;
    if (pageToken === null) break;
  }
  return models;
}

/** The Gemini models the configured Gemini upstreams serve, by id (see servedModels). */
export function geminiModels(services: ProxyServices): Promise<Map<string, GeminiModelEntry>> {
  const upstreams = services.upstreams.list.filter((u) => u.api === 'gemini');
  return servedModels(upstreams, services.clock.now(), fetchGeminiModels, idOf);
}

/** A page's position, as an opaque token. */
const pageTokenOf = (offset: number): string => Buffer.from(`offset:${offset}`).toString('base64url');

function offsetOf(pageToken: string): number {
  const match = /^offset:(\d{1,9})$/.exec(Buffer.from(pageToken, 'base64url').toString('utf8'));
  if (!match?.[1]) throw invalidRequest('pageToken: not a page token this list gave.', 'pageToken');
  return Number(match[1]);
}

/** A client's `pageSize`, as Google takes it: 0 is its default (50), and it serves at most 1000. */
function pageSizeOf(param: string): number {
  const asked = Number(param);
  if (!Number.isInteger(asked) || asked < 0) throw invalidRequest('pageSize: must be a whole number of models.', 'pageSize');
  return asked === 0 ? GOOGLE_DEFAULT_PAGE_SIZE : Math.min(asked, UPSTREAM_PAGE_SIZE);
}

/**
 * `GET /v1beta/models`: the Gemini upstreams' own lists, each cut to the models it is configured
 * to serve, in Google's shape. Paged when the client asks (`pageSize`, `pageToken`, as
 * @google/genai's pager does); whole otherwise, because LobeChat reads only the first page.
 */
export function listGeminiModels(services: ProxyServices) {
  return async function listGeminiModels(c: Context): Promise<Response> {
    await authenticate(c, services.store, GEMINI_CLIENT_KEY);
    const sizeParam = c.req.query('pageSize');
    const tokenParam = c.req.query('pageToken');
    const start = tokenParam === undefined || tokenParam === '' ? 0 : offsetOf(tokenParam);
    const size = sizeParam === undefined || sizeParam === '' ? null : pageSizeOf(sizeParam);
    const models = [...(await geminiModels(services)).values()];
    const end = size === null ? models.length : start + size;
    return c.json({ models: models.slice(start, end), ...(end < models.length ? { nextPageToken: pageTokenOf(end) } : {}) });
  };
}

/** `GET /v1beta/models/{model}`: one model of that list. */
export function getGeminiModel(services: ProxyServices) {
  return async function getGeminiModel(c: Context): Promise<Response> {
    await authenticate(c, services.store, GEMINI_CLIENT_KEY);
    const id = c.req.param('model') ?? '';
    const model = (await geminiModels(services)).get(id);
    if (!model) throw new OpenAIError(404, 'invalid_request_error', 'model_not_found', `models/${id} is not found, or no Gemini upstream of lobe-quota serves it.`, 'model');
    return c.json(model);
  };
}
