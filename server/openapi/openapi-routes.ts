import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono, type Context } from 'hono';
import { CARD_CSP } from '../../plugin/card-route.js';
import { projectRoot } from '../../plugin/project-root.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { openApiDocument } from './openapi-document.js';

const PAGE_FILES = {
  'docs.html': 'text/html; charset=utf-8',
  'docs.js': 'text/javascript; charset=utf-8',
  'docs.css': 'text/css; charset=utf-8',
} as const;

/**
 * `GET /openapi.json` and its docs page `GET /docs` (+ `/docs/docs.js|css`). No token: the document
 * describes routes and holds no data. The page uses no CDN and no inline code, under the card's CSP
 * (`connect-src 'self'` added so its script may fetch the document).
 */
export function openApiRoutes({ config }: Pick<Services, 'config'>, pageDir = path.join(projectRoot(), 'server', 'openapi', 'docs-page')) {
  const csp = `${CARD_CSP}; connect-src 'self'`;
  const file = (name: keyof typeof PAGE_FILES) => async (c: Context<AppEnv>) => {
    // Read on each request, like the card: small files, rarely fetched, and edits show at once.
    const body = await readFile(path.join(pageDir, name));
    c.header('content-type', PAGE_FILES[name]);
    c.header('cache-control', 'no-cache');
    c.header('x-content-type-options', 'nosniff');
    if (name === 'docs.html') c.header('content-security-policy', csp);
    return c.body(body);
  };
  return new Hono<AppEnv>()
    .get('/openapi.json', (c) => {
      // The servers entry depends on PUBLIC_URL and the Host; never cache a copy for another origin.
      c.header('cache-control', 'no-cache');
      return c.json(openApiDocument(config.publicUrl ?? new URL(c.req.url).origin));
    })
    .get('/docs', file('docs.html'))
    .get('/docs/docs.js', file('docs.js'))
    .get('/docs/docs.css', file('docs.css'));
}
