import { afterEach, describe, expect, it } from 'vitest';
import { testConfig } from '../testing/harness.js';
import { monthlyUserTokens } from '../store/testing/store-fixtures.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const CHAT_ORIGIN = 'http://localhost:3210'; // where LobeChat runs by default

/** The preflight a browser sends before the OpenAI SDK's POST in LobeChat's client request mode. */
const preflight = (url: string, origin: string, headers = 'authorization,content-type,x-stainless-lang,x-stainless-retry-count') =>
  fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers } });

async function chat(p: ProxyHarness, headers: Record<string, string>, stream = false) {
  return fetch(`${p.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${p.alice.secret}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream }),
  });
}

describe('CORS on the proxy routes', () => {
  it('answers the preflight of a browser client: any origin, the headers it asks for, cached a day', async () => {
    proxy = await startProxy();
    for (const path of ['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/models']) {
      const response = await preflight(`${proxy.url}${path}`, CHAT_ORIGIN);
      expect(response.status, path).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
      expect(response.headers.get('access-control-allow-headers')).toBe('authorization,content-type,x-stainless-lang,x-stainless-retry-count');
      expect(response.headers.get('access-control-max-age')).toBe('86400');
    }
    // Nothing went upstream for a preflight.
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('lets the page read the answer and its quota headers, whole, streamed and refused', async () => {
    proxy = await startProxy({ defaultBudgets: [monthlyUserTokens(100_000)] });
    for (const stream of [false, true]) {
      const response = await chat(proxy, { origin: CHAT_ORIGIN }, stream);
      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('access-control-expose-headers')).toContain('x-quota-remaining');
      expect(response.headers.get('x-quota-remaining')).not.toBeNull();
      await response.text();
    }
    const refused = await fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { origin: CHAT_ORIGIN, authorization: 'Bearer lq-nope' }, body: '{}' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('adds nothing for server-side clients, which send no Origin', async () => {
    proxy = await startProxy();
    const response = await chat(proxy, {});
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    await response.text();
  });

  it('keeps to proxy.corsOrigins when it names origins', async () => {
    proxy = await startProxy({ config: { proxy: { ...testConfig().proxy, corsOrigins: [CHAT_ORIGIN] } } });
    const allowed = await preflight(`${proxy.url}/v1/chat/completions`, CHAT_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(CHAT_ORIGIN);
    expect(allowed.headers.get('vary')).toContain('Origin');

    const other = await preflight(`${proxy.url}/v1/chat/completions`, 'https://evil.example');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('origin_not_allowed');

    const answered = await chat(proxy, { origin: CHAT_ORIGIN });
    expect(answered.headers.get('access-control-allow-origin')).toBe(CHAT_ORIGIN);
    expect(answered.headers.get('vary')).toContain('Origin');
    await answered.text();
    const notAllowed = await chat(proxy, { origin: 'https://evil.example' });
    expect(notAllowed.headers.get('access-control-allow-origin')).toBeNull();
    await notAllowed.text();
  });

  it('does not reflect preflight header lists that are not header names', async () => {
    proxy = await startProxy();
    const response = await preflight(`${proxy.url}/v1/chat/completions`, CHAT_ORIGIN, 'authorization, x-injected: 1, <b>');
    expect(response.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-quota-user, x-quota-session, x-quota-tags, x-quota-cache');
  });
});
