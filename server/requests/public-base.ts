import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { publicUrlOf, type Config } from '../config/load.js';

/**
 * The base URL links in alerts point at: PUBLIC_URL when set; else http://HOST:PORT of the socket
 * this request came in on (never the Host header, which the asking user controls: a link to their
 * own site would hand them the admin's signed approval). Only a request with no socket at all
 * (`app.request` in tests) falls back to its URL's origin.
 */
export function publicBase(c: Context, config: Pick<Config, 'publicUrl' | 'host'>): string {
  if (config.publicUrl !== null) return config.publicUrl;
  const port = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.localPort;
  if (port !== undefined) return publicUrlOf(config, port);
  return new URL(c.req.url).origin;
}
