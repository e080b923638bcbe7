import { ApiError } from '@google/genai';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, type GeminiProxy, type GoogleErrorBody, googleErrorOf, startGeminiProxy } from '../testing/gemini-harness.js';

let proxy: GeminiProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const model = 'gemini-2.5-flash';
const contents = 'Say hi';


/** A raw call under /v1beta with alice's key. */
async function call(p: GeminiProxy, path: string, init: RequestInit = {}) {
  const response = await fetch(`${p.url}${path}`, { ...init, headers: { 'x-goog-api-key': p.alice.secret, 'content-type': 'application/json', ...init.headers } });
  return { status: response.status, body: (await response.json()) as GoogleErrorBody };
}

const generate = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body) });

describe("what the Gemini routes refuse, in Google's shape", () => {
  it('a model no Gemini upstream serves is a 404 NOT_FOUND; one served in another format says which', async () => {
    proxy = await startGeminiProxy({
      config: {
        upstreams: [
          { name: 'openai', api: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-x', models: ['gpt-*'] },
          { name: 'google', api: 'gemini', baseUrl: 'http://127.0.0.1:9', apiKey: 'AIza-x', models: ['gemini-*'] },
        ],
      },
    });
    const ai = proxy.client(proxy.alice.secret);
    const unknown = await ai.models.generateContentStream({ model: 'claude-sonnet-4-5', contents }).catch((e: unknown) => e);
    expect((unknown as ApiError).status).toBe(404);
    expect(googleErrorOf(unknown).error).toMatchObject({ code: 404, status: 'NOT_FOUND', details: [{ reason: 'MODEL_NOT_FOUND', domain: 'lobe-quota' }] });
    const elsewhere = await ai.models.generateContent({ model: 'gpt-4o-mini', contents }).catch((e: unknown) => e);
    expect(googleErrorOf(elsewhere).error.message).toContain('through the OpenAI API, not the Gemini API');
    const counted = await ai.models.countTokens({ model: 'claude-sonnet-4-5', contents }).catch((e: unknown) => e);
    expect((counted as ApiError).status).toBe(404);
  });

  it('a method lobe-quota does not serve, and a path it does not know, are 404 NOT_FOUND', async () => {
    proxy = await startGeminiProxy();
    const embed = await call(proxy, `/v1beta/models/${model}:embedContent`, generate({ content: { parts: [{ text: 'x' }] } }));
    expect(embed.status).toBe(404);
    expect(embed.body.error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
    expect(embed.body.error.message).toContain('does not serve POST /v1beta/models/gemini-2.5-flash:embedContent');
    const files = await call(proxy, '/v1beta/files');
    expect(files).toMatchObject({ status: 404, body: { error: { status: 'NOT_FOUND' } } });
    const noMethod = await call(proxy, `/v1beta/models/${model}`, generate({ contents: [] }));
    expect(noMethod.status).toBe(404);
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('bad requests are 400 INVALID_ARGUMENT naming what is wrong', async () => {
    proxy = await startGeminiProxy();
    const noAlt = await call(proxy, `/v1beta/models/${model}:streamGenerateContent`, generate({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }));
    expect(noAlt.status).toBe(400);
    expect(noAlt.body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(noAlt.body.error.message).toContain('?alt=sse');
    const notJson = await call(proxy, `/v1beta/models/${model}:generateContent`, { method: 'POST', body: '{"contents": [' });
    expect(notJson).toMatchObject({ status: 400, body: { error: { status: 'INVALID_ARGUMENT' } } });
    const noContents = await call(proxy, `/v1beta/models/${model}:generateContent`, generate({ generationConfig: { maxOutputTokens: 10 } }));
    expect(noContents.body.error.message).toContain('contents');
    const badLimit = await call(proxy, `/v1beta/models/${model}:generateContent`, generate({ contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: -1 } }));
    expect(badLimit.body.error.message).toContain('generationConfig.maxOutputTokens');
    const badPage = await call(proxy, '/v1beta/models?pageSize=-3');
    expect(badPage).toMatchObject({ status: 400, body: { error: { status: 'INVALID_ARGUMENT' } } });
    const badCount = await call(proxy, `/v1beta/models/${model}:countTokens`, { method: 'POST', body: '[1]' });
    expect(badCount).toMatchObject({ status: 400, body: { error: { status: 'INVALID_ARGUMENT' } } });
    expect(proxy.fake.requests).toHaveLength(0);
  });

  it('an upstream that fails mid-stream: its error object reaches the SDK (which throws it), and what was delivered is charged', async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'stream-error', afterPieces: 3, status: 'UNAVAILABLE' });
    const received: string[] = [];
    const error = await (async () => {
      for await (const chunk of await (proxy as GeminiProxy).client((proxy as GeminiProxy).alice.secret).models.generateContentStream({ model, contents })) received.push(chunk.text ?? '');
    })().catch((e: unknown) => e);
    expect(received).toHaveLength(3);
    expect((error as Error).message).toMatch(/UNAVAILABLE|Incomplete JSON segment at the end/);
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ outcome: 'upstream_error', outputTokens: 3, source: 'estimated' });
  });

  it('an upstream that drops the stream: the SDK hears of it (our error object), and what was delivered is charged', async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'drop', afterPieces: 2 });
    const response = await fetch(`${proxy.url}/v1beta/models/${model}:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': proxy.alice.secret, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    const text = await response.text();
    const tail = JSON.parse(text.slice(text.lastIndexOf('\r\n\r\n') + 4)) as GoogleErrorBody;
    expect(tail.error).toMatchObject({ code: 502, status: 'UNAVAILABLE' });
    expect(tail.error.message).toContain('The upstream "google"');
    const error = await (async () => {
      proxy.fake.enqueue({ kind: 'drop', afterPieces: 2 });
      await collect(await (proxy as GeminiProxy).client((proxy as GeminiProxy).alice.secret).models.generateContentStream({ model, contents }));
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const entries = await proxy.svc.store.recentEntries(10);
    expect(entries.map((e) => [e.outcome, e.outputTokens])).toEqual([
      ['upstream_error', 2],
      ['upstream_error', 2],
    ]);
  });

  it("an upstream that refuses lobe-quota's own key (Google: 400 API_KEY_INVALID, or 403 without one) is a 502 to the client, whose own key is fine; nothing is charged", async () => {
    proxy = await startGeminiProxy({ upstreamKey: 'AIza-wrong' });
    const ai = proxy.client(proxy.alice.secret);
    const whole = await ai.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((whole as ApiError).status).toBe(502);
    expect(googleErrorOf(whole).error).toMatchObject({ status: 'UNAVAILABLE', details: [{ reason: 'UPSTREAM_AUTH_FAILED' }] });
    expect(googleErrorOf(whole).error.message).toContain('rejected lobe-quota\'s own key (HTTP 400), not yours');
    const streamed = await ai.models.generateContentStream({ model, contents }).catch((e: unknown) => e);
    expect((streamed as ApiError).status).toBe(502);
    const counted = await ai.models.countTokens({ model, contents }).catch((e: unknown) => e);
    expect((counted as ApiError).status).toBe(502);
    expect(proxy.fake.requests.map((r) => r.apiKey)).toEqual(['AIza-wrong', 'AIza-wrong', 'AIza-wrong']);
    await proxy.close();
    proxy = await startGeminiProxy({ upstreamKey: undefined });
    const keyless = await proxy.client(proxy.alice.secret).models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((keyless as ApiError).status).toBe(502);
    expect(await proxy.svc.store.recentEntries(10)).toEqual([]);
    expect(await proxy.svc.store.listHolds()).toEqual([]);
  });

  it("the upstream's other errors pass through as Google wrote them (a 400 about the request, a 403 about the model)", async () => {
    proxy = await startGeminiProxy();
    proxy.fake.enqueue({ kind: 'error', status: 'INVALID_ARGUMENT', message: 'Unable to submit request because it has an empty text parameter.' }, { kind: 'error', status: 'PERMISSION_DENIED', message: 'You do not have permission to access tuned model.' });
    const ai = proxy.client(proxy.alice.secret);
    const bad = await ai.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((bad as ApiError).status).toBe(400);
    expect(googleErrorOf(bad).error.message).toBe('Unable to submit request because it has an empty text parameter.');
    const denied = await ai.models.generateContent({ model, contents }).catch((e: unknown) => e);
    expect((denied as ApiError).status).toBe(403);
  });

  it('no Gemini upstream that can list its models is a 502; none configured is an empty list', async () => {
    proxy = await startGeminiProxy();
    await proxy.fake.close();
    const down = await call(proxy, '/v1beta/models');
    expect(down).toMatchObject({ status: 502, body: { error: { code: 502, status: 'UNAVAILABLE', details: [{ reason: 'UPSTREAM_UNREACHABLE' }] } } });
    await proxy.close();
    proxy = await startGeminiProxy({ config: { upstreams: [{ name: 'openai', api: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-x', models: ['*'] }] } });
    const none = await fetch(`${proxy.url}/v1beta/models?key=${proxy.alice.secret}`);
    expect(await none.json()).toEqual({ models: [] });
  });
});
