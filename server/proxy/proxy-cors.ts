import type { MiddlewareHandler } from 'hono';
import { outgoingOf } from './response-sink.js';

/**
 * The response headers a browser script may read: our quota headers, the request id, and the
 * OpenAI headers the SDKs read for retries and rate limits (LobeChat's client request mode runs the
 * OpenAI SDK in the browser, which sees only what is exposed).
 */
const EXPOSED_HEADERS = [
  'x-quota-limit',
  'x-quota-remaining',
  'x-quota-reset',
  'x-quota-unit',
  'x-quota-downgraded-from',
  'x-quota-refused',
  'x-quota-cache',
  'x-request-id',
  'x-should-retry',
  'retry-after',
  'retry-after-ms',
  'openai-processing-ms',
  'x-ratelimit-limit-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
].join(', ');

/**
 * What a preflight may ask for when it names no headers, and what it is allowed when it names
 * unusual characters: the SDKs' own headers are named in full by a real preflight and reflected.
 */
const DEFAULT_ALLOWED_HEADERS = 'authorization, content-type, x-quota-user, x-quota-session, x-quota-tags, x-quota-cache';
/** A list of header names (RFC 9110 tokens): anything else in a preflight is not reflected. */
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

const PREFLIGHT_MAX_AGE_SECONDS = '86400';

/**
 * CORS for the proxy routes, so a browser-side client (LobeChat's client request mode) can call
 * them. The proxy authenticates with bearer keys only, never cookies: a page on another origin can
 * spend only with a key it already holds, so allowing any origin (the default) gives nothing away.
 *
 * A request without an `Origin` header (every server-side client) skips all of this. The headers
 * are set on the socket's response where there is one: whole answers and streams are written
 * straight to it (response-sink.ts), past Hono's own response headers.
 */
export function proxyCors(origins: readonly string[]): MiddlewareHandler {
  if (origins.length === 0) return (_c, next) => next();
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);

  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin === undefined) return next();
    const allowOrigin = anyOrigin ? '*' : allowed.has(origin) ? origin : null;
    const preflight = c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') !== undefined;

    if (preflight) {
      if (allowOrigin === null) return c.json({ error: { message: `Origin ${origin} may not call this API (proxy.corsOrigins).`, type: 'invalid_request_error', param: null, code: 'origin_not_allowed' } }, 403, { vary: 'Origin' });
      const asked = c.req.header('access-control-request-headers')?.trim();
      return c.body(null, 204, {
        'access-control-allow-origin': allowOrigin,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': asked && HEADER_LIST.test(asked) ? asked : DEFAULT_ALLOWED_HEADERS,
        'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
        vary: 'Origin, Access-Control-Request-Headers',
      });
    }
    if (allowOrigin === null) return next();

    const headers: Record<string, string> = { 'access-control-allow-origin': allowOrigin, 'access-control-expose-headers': EXPOSED_HEADERS };
    if (!anyOrigin) headers.vary = 'Origin';
    const outgoing = outgoingOf(c);
    if (outgoing) {
      // Merged by Node into whatever writeHead sends later, whoever calls it.
      for (const [name, value] of Object.entries(headers)) outgoing.setHeader(name, value);
      return next();
    }
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}
