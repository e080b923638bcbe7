import type { Context } from 'hono';
import type { RequestSubject } from '../../quota/scope.js';
import type { KeyIdentity } from '../../store/types.js';
import { isRecord } from '../../util/is-record.js';
import type { AdmittedRequest, ProxyServices } from '../admit-request.js';
import type { AdmissionFacts } from '../dialects/dialect.js';
import { payerOf } from '../identity.js';
import { tapAnswer } from '../response-sink.js';
import { captureAnswer } from './answer-capture.js';
import { CACHE_PROFILES, type CacheProfile } from './cache-profiles.js';
import { canonicalRequest, cacheScopeId } from './canonical-request.js';
import { CACHE_HEADER, cacheHeaderOf, isCacheable } from './eligibility.js';
import type { CachedAnswer, ResponseCache } from './response-cache.js';

/** A request looked up in the cache: who pays (resolved once, for the lookup and admission), its canonical bytes, and the answer found. */
export interface CacheLookup {
  cache: ResponseCache;
  subject: RequestSubject;
  canonical: Buffer;
  found: CachedAnswer | null;
}

/**
 * The response cache's look at a parsed request, before admission: null, at once, when the request
 * is not cacheable (the cache off, `X-Quota-Cache: off`, a sampled request without `on`, an API the
 * cache does not know), so that most requests wait for nothing here; else the lookup, keyed by the
 * payer the cache's scope names. `headers` gives the client's headers that go upstream, which key
 * the answer too.
 */
export function lookUpAnswer(
  c: Context,
  services: ProxyServices,
  identity: KeyIdentity,
  { api, request, facts, headers }: { api: string; request: unknown; facts: AdmissionFacts; headers: () => Record<string, string> | undefined },
): Promise<CacheLookup> | null {
  const cache = services.responseCache;
  // The header is checked whenever it is sent, so a typo is heard of even while the cache is off.
  const header = cacheHeaderOf(c.req.header(CACHE_HEADER));
  const profile = CACHE_PROFILES[api];
  if (!cache || !isRecord(request) || !isCacheable(services.config.cache, profile, header, request)) return null;
  return lookUp(c, services, identity, cache, profile, { api, request, facts, headers: headers() });
}

async function lookUp(
  c: Context,
  services: ProxyServices,
  identity: KeyIdentity,
  cache: ResponseCache,
  profile: CacheProfile,
  { api, request, facts, headers }: { api: string; request: Record<string, unknown>; facts: AdmissionFacts; headers: Record<string, string> | undefined },
): Promise<CacheLookup> {
  const subject = await payerOf(c, services, identity, facts.bodyUser);
  const canonical = canonicalRequest({
    api,
    scopeId: cacheScopeId(services.config.cache.scope, subject),
    streaming: facts.streaming,
    body: request,
    ignoredFields: profile.ignoredFields,
    headers,
  });
  const found = cache.lookup(canonical);
  if (!found) services.metrics.recordCacheMiss();
  return { cache, subject, canonical, found };
}

/**
 * Keeps the answer of a request that missed, once it went out: only one that ended `ok` (2xx,
 * complete, settled as such), from the model asked for (not a budget's cheaper one), and not one a
 * budget may have shortened (its output limit was lowered below what it asked, and it used all of
 * it). The charge it was settled with is stored with it, for its hits to be charged a part of.
 */
export function keepAnswer(c: Context, lookup: CacheLookup, current: () => AdmittedRequest, wantOutput: number): void {
  tapAnswer(
    c,
    captureAnswer(lookup.cache.maxAnswerBytes, (answer) => {
      // The admission that served it: after a failover, the next upstream's.
      const admitted = current();
      const entry = admitted.meter.settledEntry;
      if (!entry || entry.outcome !== 'ok' || answer.status < 200 || answer.status >= 300) return;
      if (admitted.downgradedFrom !== null) return;
      if (admitted.outputLimit < wantOutput && entry.outputTokens >= admitted.outputLimit) return;
      const charge = { model: entry.model, inputTokens: entry.inputTokens, outputTokens: entry.outputTokens, costMicros: entry.costMicros };
      try {
        lookup.cache.store(lookup.canonical, { ...answer, charge });
      } catch (error) {
        // The client has its answer; a cache that cannot write only misses again.
        console.error('[lobe-quota] could not store an answer in the response cache:', (error as Error).message);
      }
    }),
  );
}
