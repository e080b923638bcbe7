import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Handler } from 'hono';
import type { AppEnv } from './app-env.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * A handler serving one of our small static files (the plugin card, the dashboard, the docs page).
 * Read on each request: they are small, rarely fetched, and an edit shows at once. `no-cache` and
 * `nosniff` always; `headers` adds a page's own (its CSP, above all).
 */
export function staticFile(file: string, headers: Record<string, string> = {}): Handler<AppEnv> {
  const type = CONTENT_TYPES[path.extname(file)];
  if (type === undefined) throw new Error(`no content type known for ${file}`);
  return async function staticFile(c) {
    const body = await readFile(file);
    c.header('content-type', type);
    c.header('cache-control', 'no-cache');
    c.header('x-content-type-options', 'nosniff');
    for (const [name, value] of Object.entries(headers)) c.header(name, value);
    return c.body(body);
  };
}
