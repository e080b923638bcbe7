import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Context, type Hono } from 'hono';
import type { AppEnv } from './app-env.js';
import { renderError } from './errors.js';

/** A route answered straight from Node's request, past Hono's router (see `nodeListener`). */
export type DirectRoute = (c: Context<AppEnv>) => Promise<Response>;

/** An app and the routes of it that are answered directly: `POST <path>` → its handler. */
export interface ServedApp {
  fetch: Hono<AppEnv>['fetch'];
  /** Exact request targets (no query) of `POST` routes that need no middleware for a request without an `Origin`. */
  directRoutes: ReadonlyMap<string, DirectRoute>;
}

/**
 * The server's request listener. The metered proxy routes — every request a client pays for —
 * are called straight from Node's request, without @hono/node-server's web Request, Hono's router
 * and middleware chain, or a web Response to take apart again: their answers are written to the
 * socket's response anyway (response-sink.ts). Everything else, and any request the direct path
 * would answer differently (one with an `Origin`, for CORS; a query string; another method), goes
 * through the whole app as before.
 *
 * A handler still gets a Hono Context (its request reads headers, the body and the path from
 * Node's request), so one route serves both ways and tests can keep using `app.request`.
 */
export function nodeListener(app: ServedApp): RequestListener {
  const viaHono = getRequestListener(app.fetch);
  return (incoming, outgoing) => {
    const route = incoming.method === 'POST' && incoming.headers.origin === undefined ? app.directRoutes.get(incoming.url ?? '') : undefined;
    if (route === undefined) return void viaHono(incoming, outgoing);
    // A Context reads only these of its request (HonoRequest: method, url, headers.get, text).
    const c = new Context<AppEnv>(nodeRequest(incoming) as unknown as Request, { env: { incoming, outgoing }, path: incoming.url as string });
    route(c)
      .then(
        (response) => send(response, outgoing),
        // The app's error handler, as app.onError would answer (the metered routes render their own).
        (error: unknown) => send(renderError(error instanceof Error ? error : new Error(String(error)), c), outgoing),
      )
      .catch(() => outgoing.destroy());
  };
}

/**
 * Headers of which Node keeps only the first when a request repeats them; @hono/node-server joins
 * every copy (as a web Request's headers do), and so does `nodeRequest`, so that a request is read
 * the same either way.
 */
const FIRST_ONLY = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/** Every copy of a header in the raw list, joined as a web Request's headers join them. */
function joinedRaw(rawHeaders: readonly string[], lowerName: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) {
      const one = (rawHeaders[i + 1] as string).trim();
      value = value === null ? one : `${value}, ${one}`;
    }
  }
  return value;
}

/** What a Context's request reads from a web Request (method, url, headers, text), read from Node's own. */
function nodeRequest(incoming: IncomingMessage) {
  const { headers } = incoming;
  return {
    method: 'POST',
    url: `http://${headers.host ?? 'localhost'}${incoming.url ?? '/'}`,
    headers: {
      get(name: string): string | null {
        const lower = name.toLowerCase();
        if (FIRST_ONLY.has(lower)) return joinedRaw(incoming.rawHeaders, lower);
        const value = headers[lower];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    },
    text: () => readText(incoming),
  };
}

function readText(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.once('end', () => resolve((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8')));
    incoming.once('error', reject);
    // A client gone before the end of its body: nothing will come, and nothing was admitted yet.
    incoming.once('close', () => {
      if (!incoming.complete) reject(new Error('Client connection prematurely closed.'));
    });
  });
}

/** Writes a handler's web Response (an error or a refusal; answers are written by the handler itself). */
async function send(response: Response, outgoing: ServerResponse): Promise<void> {
  if (response === RESPONSE_ALREADY_SENT || outgoing.headersSent) return;
  try {
    const headers: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      headers[name] = name === 'set-cookie' ? response.headers.getSetCookie() : value;
    });
    if (response.body === null) {
      outgoing.writeHead(response.status, headers).end();
      return;
    }
    const body = Buffer.from(await response.arrayBuffer());
    outgoing.writeHead(response.status, { ...headers, 'content-length': String(body.length) }).end(body);
  } catch {
    outgoing.destroy();
  }
}
