import type { CacheConfig } from '../../config/schema.js';
import { OpenAIError } from '../openai-error.js';
import type { CacheProfile } from './cache-profiles.js';

/** `X-Quota-Cache: on` opts a sampled request in; `off` keeps a request away from the cache entirely. */
export type CacheHeader = 'on' | 'off' | null;

export const CACHE_HEADER = 'x-quota-cache';

/** The request's X-Quota-Cache header; anything but `on` or `off` is a 400 that says so. */
export function cacheHeaderOf(value: string | undefined): CacheHeader {
  if (value === undefined) return null;
  const word = value.trim().toLowerCase();
  if (word === 'on' || word === 'off') return word;
  throw new OpenAIError(400, 'invalid_request_error', 'invalid_header', 'X-Quota-Cache: "on" (cache this request even if it samples) or "off" (never look it up nor store its answer).');
}

/**
 * Whether a request may be answered from the cache and its answer stored: only when the cache is
 * on, never with `X-Quota-Cache: off`, never for an API without a profile or a request its profile
 * excludes, and a request that samples (temperature above 0, the default of every chat API) only
 * when the client asks with `X-Quota-Cache: on`, since it expects a different answer each time.
 */
export function isCacheable(config: Pick<CacheConfig, 'enabled'>, profile: CacheProfile | undefined, header: CacheHeader, body: Record<string, unknown>): profile is CacheProfile {
  if (!config.enabled || header === 'off' || !profile) return false;
  if (profile.never?.(body)) return false;
  return header === 'on' || profile.temperature(body) <= 0;
}
