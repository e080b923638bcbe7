import { ApiError, GoogleGenAI } from '@google/genai';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, type GeminiProxy, type GoogleErrorBody, googleErrorOf, startGeminiProxy, UPSTREAM_GEMINI_KEY } from '../testing/gemini-harness.js';

let proxy: GeminiProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const model = 'gemini-2.5-flash';
const contents = 'Say hi';


const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });

describe('who may call the Gemini routes', () => {
  it("a bad key is a 401 UNAUTHENTICATED in Google's shape, and nothing goes upstream", async () => {
    proxy = await startGeminiProxy();
    const error = await proxy.client('lq-not-a-key').models.generateContentStream({ model, contents }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect(googleErrorOf(error).error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', message: 'Incorrect API key provided: use an active lobe-quota key (lq-…).' });
    // Google's own key format is no key here either.
    const google = await proxy.client('AIzaSy-some-google-key').models.countTokens({ model, contents }).catch((e: unknown) => e);
    expect((google as ApiError).status).toBe(401);
    const list = await fetch(`${proxy.url}/v1beta/models?key=lq-not-a-key`);
    expect(list.status).toBe(401);
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('no key at all is a 401 that says where the key goes', async () => {
    proxy = await startGeminiProxy();
    const response = await fetch(`${proxy.url}/v1beta/models/${model}:generateContent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(401);
    const { error } = (await response.json()) as GoogleErrorBody;
    expect(error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    expect(error.message).toContain('x-goog-api-key: lq-…');
  });

  it('the key is taken from x-goog-api-key, ?key= or a bearer token', async () => {
    proxy = await startGeminiProxy();
    const url = `${proxy.url}/v1beta/models/${model}:generateContent`;
    const json = { 'content-type': 'application/json' };
    expect((await fetch(url, { method: 'POST', headers: { ...json, 'x-goog-api-key': proxy.alice.secret }, body })).status).toBe(200);
    expect((await fetch(`${url}?key=${proxy.alice.secret}`, { method: 'POST', headers: json, body })).status).toBe(200);
    expect((await fetch(url, { method: 'POST', headers: { ...json, authorization: `Bearer ${proxy.alice.secret}` }, body })).status).toBe(200);
    const entries = await proxy.svc.store.recentEntries(10);
    expect(entries.map((e) => e.userId)).toEqual(['alice', 'alice', 'alice']);
  });

  it("the user's lq- key never reaches the upstream: it sees lobe-quota's own key, in x-goog-api-key", async () => {
    proxy = await startGeminiProxy();
    const secret = proxy.alice.secret;
    const ai = proxy.client(secret);
    await ai.models.generateContent({ model, contents });
    await collect(await ai.models.generateContentStream({ model, contents }));
    await ai.models.countTokens({ model, contents });
    await fetch(`${proxy.url}/v1beta/models?key=${secret}`);
    await fetch(`${proxy.url}/v1beta/models/${model}:streamGenerateContent?alt=sse&key=${secret}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.text());
    expect(proxy.fake.requests.map((r) => r.action ?? r.path)).toEqual(['generateContent', 'streamGenerateContent', 'countTokens', 'list', 'streamGenerateContent']);
    for (const request of proxy.fake.requests) {
      expect(request.headers['x-goog-api-key']).toBe(UPSTREAM_GEMINI_KEY);
      expect(request.query.key).toBeUndefined();
      expect(request.headers.authorization).toBeUndefined();
      expect(JSON.stringify(request)).not.toContain(secret);
    }
  });

  it('a service key names the end user who pays with X-Quota-User; a personal key may not name anyone else', async () => {
    proxy = await startGeminiProxy();
    await proxy.svc.admin('POST', '/admin/users', { id: 'lobechat' });
    const created = await proxy.svc.admin('POST', '/admin/keys', { userId: 'lobechat', service: true });
    const serviceKey = ((await created.json()) as { key: string }).key;
    const asBob = new GoogleGenAI({ apiKey: serviceKey, httpOptions: { baseUrl: proxy.url, headers: { 'x-quota-user': 'bob' } } });
    await asBob.models.generateContent({ model, contents });
    expect((await proxy.svc.store.recentEntries(1))[0]?.userId).toBe('bob');
    const aliceAsBob = new GoogleGenAI({ apiKey: proxy.alice.secret, httpOptions: { baseUrl: proxy.url, headers: { 'x-quota-user': 'bob' } } });
    const error = await aliceAsBob.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((error as ApiError).status).toBe(403);
    expect(googleErrorOf(error).error.status).toBe('PERMISSION_DENIED');
  });

  it('a model id cannot reach another upstream path: it is one path segment upstream', async () => {
    proxy = await startGeminiProxy({ models: ['*'] });
    const sneaky = encodeURIComponent('gemini-2.5-flash:generateContent?x=1/../../files');
    await fetch(`${proxy.url}/v1beta/models/${sneaky}:generateContent`, { method: 'POST', headers: { 'x-goog-api-key': proxy.alice.secret, 'content-type': 'application/json' }, body });
    expect(proxy.fake.requests.map((r) => r.path)).toEqual([`/v1beta/models/${sneaky}:generateContent`]);
  });
});
