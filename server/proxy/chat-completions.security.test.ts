import { afterEach, describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';

const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

let proxy: ProxyHarness | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** Sends JSON text as written: the SDK (or JSON.stringify) could not give a key twice. */
const postRaw = (p: ProxyHarness, path: string, body: string) =>
  fetch(`${p.url}/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${p.alice.secret}`, 'content-type': 'application/json' }, body });

/** How often `"key"` occurs in a JSON text. */
const occurrences = (text: string, key: string) => text.split(`"${key}"`).length - 1;

describe('a body that gives a key twice', () => {
  // JSON.parse keeps the last of two equal keys, and so does lobe-quota; an upstream whose parser kept
  // the first would otherwise stream what was admitted as a whole answer, or run a dearer model
  // than the one priced. So the upstream is sent the body as lobe-quota read it, each key once.
  it('chat: reaches the upstream with each key once, holding the values that were admitted and priced', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const body = '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":50000,"model":"gpt-4o-mini","stream":false,"max_tokens":40}';
    const response = await postRaw(proxy, '/chat/completions', body);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    const sent = proxy.fake.requests[0]?.rawBody ?? '';
    for (const key of ['model', 'stream', 'max_tokens']) expect(occurrences(sent, key)).toBe(1);
    expect(JSON.parse(sent)).toMatchObject({ model: 'gpt-4o-mini', stream: false, max_tokens: 40 });
    const [entry] = await proxy.svc.store.recentEntries(1);
    expect(entry).toMatchObject({ model: 'gpt-4o-mini', source: 'upstream' });
  });

  it('embeddings: the model and input that were priced are the ones the upstream gets', async () => {
    proxy = await startProxy({ defaultBudgets: [monthly] });
    const body = '{"model":"text-embedding-3-large","input":"a much longer text that was never counted","model":"text-embedding-3-small","input":"hi"}';
    const response = await postRaw(proxy, '/embeddings', body);
    expect(response.status).toBe(200);
    const sent = proxy.fake.requests[0]?.rawBody ?? '';
    for (const key of ['model', 'input']) expect(occurrences(sent, key)).toBe(1);
    expect(JSON.parse(sent)).toMatchObject({ model: 'text-embedding-3-small', input: 'hi' });
  });
});
