import path from 'node:path';
import { Hono } from 'hono';
import type { AppEnv } from '../server/http/app-env.js';
import { staticFile } from '../server/http/static-file.js';
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

/** `GET /plugin/card.html|js|css`: the plugin card LobeChat shows in its iframe, from `public/`. */
export function cardRoutes(publicDir: string = path.join(projectRoot(), 'public')) {
  return new Hono<AppEnv>()
    .get('/plugin/card.html', staticFile(path.join(publicDir, 'card.html'), { 'content-security-policy': CARD_CSP }))
    .get('/plugin/card.js', staticFile(path.join(publicDir, 'card.js')))
    .get('/plugin/card.css', staticFile(path.join(publicDir, 'card.css')));
}
