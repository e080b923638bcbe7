import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono } from 'hono';
import type { AppEnv } from '../server/http/app-env.js';
import { projectRoot } from './project-root.js';

/**
 * The card's page. Scripts and styles only from this server (no inline code, so nothing that
 * reaches the page can run). `frame-ancestors` is left out on purpose: LobeChat is self-hosted
 * anywhere (and in a desktop app), so any page may embed the card; it has no buttons to click-jack.
 */
export const CARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const FILES = {
  'card.html': 'text/html; charset=utf-8',
  'card.js': 'text/javascript; charset=utf-8',
  'card.css': 'text/css; charset=utf-8',
} as const;

/** `GET /plugin/card.html|js|css`: the plugin card LobeChat shows in its iframe, from `public/`. */
export function cardRoutes(publicDir: string = path.join(projectRoot(), 'public')) {
  const app = new Hono<AppEnv>();
  for (const [name, type] of Object.entries(FILES)) {
    app.get(`/plugin/${name}`, async (c) => {
      // Read on each request: three small files, fetched once per card, and edits show at once.
      const body = await readFile(path.join(publicDir, name));
      c.header('content-type', type);
      c.header('cache-control', 'no-cache');
      c.header('x-content-type-options', 'nosniff');
      if (name === 'card.html') c.header('content-security-policy', CARD_CSP);
      return c.body(body);
    });
  }
  return app;
}
