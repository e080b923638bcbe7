/** The upstreams' own model lists, fetched once a minute at most and merged: every API's model routes share this. */
import { OpenAIError } from './openai-error.js';
import { callUpstream } from './upstream-call.js';
import type { Upstream } from './upstreams.js';

/** How long one upstream's model list is reused (LobeChat refreshes its model list often). */
export const MODEL_LIST_TTL_MS = 60_000;
/** A model list is small: an upstream that takes longer than this is skipped for this call. */
export const MODEL_LIST_TIMEOUT_MS = 10_000;

interface CachedList {
  at: number;
  list: Promise<unknown[]>;
}

/** Per Upstream instance, so a fresh set of upstreams (a new app, a test) starts empty. */
const lists = new WeakMap<Upstream, CachedList>();

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
 * An upstream's answer to `GET path`, parsed, within MODEL_LIST_TIMEOUT_MS (or `signal`'s time, for
 * a list read in pages). An error status or a body that is not JSON throws an Error that names the
 * upstream and `shownPath` (default `path`): one upstream's failure is left out of a merged list.
 */
export async function getUpstreamJson(
  upstream: Upstream,
  path: string,
  options: { headers?: Record<string, string>; signal?: AbortSignal; shownPath?: string } = {},
): Promise<unknown> {
  const shown = options.shownPath ?? path;
  const signal = options.signal ?? AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
  const response = await callUpstream(upstream, path, { method: 'GET', signal, ...(options.headers ? { headers: options.headers } : {}) });
  const text = await response.body.text();
  if (response.statusCode >= 400) throw new Error(`The upstream "${upstream.name}" answered ${response.statusCode} to GET ${shown}.`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`The upstream "${upstream.name}" answered GET ${shown} with something that is not JSON.`);
  }
}
