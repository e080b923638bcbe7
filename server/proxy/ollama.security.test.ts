import { Ollama } from 'ollama';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startFakeOpenAI } from '../testing/fake-openai.js';
import { startOllamaProxy, type OllamaProxyHarness } from '../testing/ollama-proxy-harness.js';

let proxy: OllamaProxyHarness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await proxy?.close();
  proxy = undefined;
});

const model = 'llama3.2';
const messages = [{ role: 'user', content: 'Say hi' }];

async function drain<T>(stream: AsyncIterable<T>): Promise<void> {
  for await (const _item of stream);
}

/** Everything the upstream was sent, as one text: URLs, headers and bodies. */
const everythingSent = (p: OllamaProxyHarness) => JSON.stringify(p.fake.requests.map(({ url, headers, rawBody }) => ({ url, headers, rawBody })));

describe('the user’s key never reaches the upstream', () => {
  it.each(['header', 'url'] as const)('key in the %s: not in any URL, header or body the upstream sees', async (via) => {
    proxy = await startOllamaProxy();
    const client = proxy.client(proxy.alice.secret, via);
    await client.chat({ model, messages });
    await drain(await client.generate({ model, prompt: 'hi', stream: true }));
    await client.embed({ model: 'nomic-embed-text', input: 'hi' });
    await client.embeddings({ model: 'nomic-embed-text', prompt: 'hi' });
    await client.list();
    await client.version();
    expect(proxy.fake.requests.map((r) => r.path)).toEqual(['/api/chat', '/api/generate', '/api/embed', '/api/embeddings', '/api/tags', '/api/version']);
    expect(everythingSent(proxy)).not.toContain(proxy.alice.secret);
    expect(proxy.fake.requests.map((r) => r.authorization)).toEqual([null, null, null, null, null, null]);
  });

  it('an upstream with a key of its own (Ollama behind an authenticating proxy) gets that key as a bearer token', async () => {
    proxy = await startOllamaProxy({ upstreamKey: 'ollama-upstream-secret', fake: { apiKey: 'ollama-upstream-secret' } });
    await proxy.client(proxy.alice.secret).chat({ model, messages });
    await proxy.client(proxy.alice.secret, 'url').list();
    expect(proxy.fake.requests.map((r) => r.authorization)).toEqual(['Bearer ollama-upstream-secret', 'Bearer ollama-upstream-secret']);
  });
});

describe('no key, a wrong key', () => {
  it('without a key: 401 {"error": …} saying where the key goes, which ollama-js throws; nothing goes upstream', async () => {
    proxy = await startOllamaProxy();
    const anonymous = new Ollama({ host: `${proxy.url}/ollama` });
    for (const call of [() => anonymous.chat({ model, messages }), () => anonymous.list(), () => anonymous.embed({ model, input: 'x' })]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'ResponseError', status_code: 401 });
      expect((error as Error).message).toBe('You didn\'t provide an API key. Use "Authorization: Bearer lq-…", or a base URL ending in "/ollama/k/lq-…" with the key lobe-quota issued you.');
    }
    const response = await fetch(`${proxy.url}/ollama/api/generate`, { method: 'POST', body: JSON.stringify({ model, prompt: 'hi' }) });
    expect(response.status).toBe(401);
    expect(Object.keys((await response.json()) as object)).toEqual(['error']);
    expect(proxy.fake.requests).toEqual([]);
  });

  it('a wrong or revoked key in the URL: 401, the key not repeated back', async () => {
    proxy = await startOllamaProxy();
    const wrong = 'lq-not-a-real-key-0123456789';
    const error = await proxy.client(wrong, 'url').chat({ model, messages }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 401 });
    expect((error as Error).message).not.toContain(wrong);

    await proxy.client(proxy.alice.secret, 'url').chat({ model, messages });
    const revoked = await proxy.svc.admin('DELETE', `/admin/keys/${proxy.alice.subject.keyId}`);
    expect(revoked.status).toBeLessThan(300);
    const afterRevoke = await proxy.client(proxy.alice.secret, 'url').chat({ model, messages }).catch((e: unknown) => e);
    expect(afterRevoke).toMatchObject({ status_code: 401 });
    expect(proxy.fake.requests).toHaveLength(1);
  });

  it('a key in the URL is the key: a bearer header beside it does not replace it', async () => {
    proxy = await startOllamaProxy();
    const response = await fetch(`${proxy.url}/ollama/k/lq-wrong/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${proxy.alice.secret}` }, body: JSON.stringify({ model, messages, stream: false }) });
    expect(response.status).toBe(401);
    expect(proxy.fake.requests).toEqual([]);
  });
});

describe('a key in the URL is never written down by lobe-quota', () => {
  it('a request that fails inside the proxy is logged with the key masked, and answered in Ollama’s shape', async () => {
    proxy = await startOllamaProxy();
    const logged: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '));
    });
    vi.spyOn(proxy.svc.store, 'findKeyByHash').mockRejectedValue(new Error('a bug'));
    const error = await proxy.client(proxy.alice.secret, 'url').chat({ model, messages }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 500, error: 'The proxy failed; the server log has the details.' });
    expect(logged.join('\n')).toContain('POST /ollama/k/…/api/chat failed');
    expect(logged.join('\n')).not.toContain(proxy.alice.secret);
  });

  it('an unknown path under a key-scoped base URL is a 404 in Ollama’s shape that does not repeat the key', async () => {
    proxy = await startOllamaProxy();
    const response = await fetch(`${proxy.url}/ollama/k/${proxy.alice.secret}/api/pull`, { method: 'POST', body: '{"model":"llama3.2"}' });
    expect(response.status).toBe(404);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: 'POST /ollama/k/…/api/pull is not part of the Ollama API served here' });
    expect(text).not.toContain(proxy.alice.secret);
  });
});

describe('formats are not crossed', () => {
  it('a model served only through the OpenAI API is a 404 in Ollama’s shape that says so; nothing goes upstream', async () => {
    const openai = await startFakeOpenAI();
    try {
      proxy = await startOllamaProxy({
        config: {
          upstreams: [
            { name: 'openai', api: 'openai', baseUrl: `${openai.baseUrl}/v1`, apiKey: 'sk-x', models: ['gpt-*'] },
            { name: 'local-ollama', api: 'ollama', baseUrl: 'http://127.0.0.1:9', apiKey: undefined, models: ['llama*'] },
          ],
        },
      });
      const error = await proxy.client(proxy.alice.secret).chat({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e);
      expect(error).toMatchObject({ status_code: 404 });
      expect((error as Error).message).toMatch(/served here through the OpenAI API, not the Ollama API/);
      expect(openai.requests).toEqual([]);
    } finally {
      await openai.close();
    }
  });
});

describe('browsers (LobeChat may call Ollama from the page)', () => {
  it('a preflight to the key-scoped base URL is answered, and the answer is readable cross-origin', async () => {
    proxy = await startOllamaProxy();
    const base = `${proxy.url}/ollama/k/${proxy.alice.secret}`;
    const preflight = await fetch(`${base}/api/chat`, { method: 'OPTIONS', headers: { origin: 'https://chat.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    const response = await fetch(`${base}/api/chat`, { method: 'POST', headers: { origin: 'https://chat.example.com', 'content-type': 'application/json' }, body: JSON.stringify({ model, messages, stream: false }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
  });
});
