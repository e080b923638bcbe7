import path from 'node:path';
import { Hono } from 'hono';
import { CARD_CSP } from '../../plugin/card-route.js';
import { projectRoot } from '../../plugin/project-root.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { staticFile } from '../http/static-file.js';
import { openApiDocument } from './openapi-document.js';

/**
 * `GET /openapi.json` and its docs page `GET /docs` (+ `/docs/docs.js|css`). No token: the document
 * describes routes and holds no data. The page uses no CDN and no inline code, under the card's CSP
 * (`connect-src 'self'` added so its script may fetch the document).
 */
export function openApiRoutes({ config }: Pick<Services, 'config'>, pageDir = path.join(projectRoot(), 'server', 'openapi', 'docs-page')) {
  const csp = `${CARD_CSP}; connect-src 'self'`;
  return new Hono<AppEnv>()
    .get('/openapi.json', (c) => {
      // The servers entry depends on PUBLIC_URL and the Host; never cache a copy for another origin.
      c.header('cache-control', 'no-cache');
      return c.json(openApiDocument(config.publicUrl ?? new URL(c.req.url).origin));
    })
    .get('/docs', staticFile(path.join(pageDir, 'docs.html'), { 'content-security-policy': csp }))
    .get('/docs/docs.js', staticFile(path.join(pageDir, 'docs.js')))
    .get('/docs/docs.css', staticFile(path.join(pageDir, 'docs.css')));
}
