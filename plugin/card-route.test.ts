import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testService } from '../server/testing/harness.js';
import { CARD_CSP } from './card-route.js';
import { projectRoot } from './project-root.js';

const root = projectRoot();

describe('GET /plugin/card.*', () => {
  const svc = testService();

  it('serves the page with a strict CSP and no caching, and its script and style', async () => {
    for (const [file, type] of [
      ['card.html', 'text/html; charset=utf-8'],
      ['card.js', 'text/javascript; charset=utf-8'],
      ['card.css', 'text/css; charset=utf-8'],
    ] as const) {
      const response = await svc.app.request(`/plugin/${file}`);
      expect(response.status, file).toBe(200);
      expect(response.headers.get('content-type')).toBe(type);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toBe(file === 'card.html' ? CARD_CSP : null);
      expect(await response.text()).toBe(await readFile(path.join(root, 'public', file), 'utf8'));
    }
    expect(CARD_CSP).toContain("script-src 'self'");
    expect(CARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|frame-ancestors/);
  });

  it('keeps the page free of inline script and style, which the CSP would block', async () => {
    const html = await readFile(path.join(root, 'public', 'card.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style|\sstyle=|\son\w+=/i);
    expect(await readFile(path.join(root, 'public', 'card.js'), 'utf8')).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });

  it('answers 404 for anything else under /plugin/', async () => {
    for (const route of ['/plugin/card.txt', '/plugin/../package.json', '/plugin/public/card.html', '/plugin/']) {
      expect((await svc.app.request(route)).status, route).toBe(404);
    }
  });

  it('finds the checkout from the sources and from dist/', () => {
    expect(path.join(root, 'package.json')).toBe(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
    expect(projectRoot(path.join(root, 'dist', 'plugin'))).toBe(root);
  });
});
