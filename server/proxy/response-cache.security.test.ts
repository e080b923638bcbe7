import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../config/load.js';
import { userWithKey } from '../testing/harness.js';
import { serviceClient, startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { CACHE_FILE } from './response-cache/response-cache.js';

let proxy: ProxyHarness | undefined;
let dir: string | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const cacheConfig = (scope: Config['cache']['scope'] = 'user'): Partial<Config> => ({
  cache: { enabled: true, scope, ttlSeconds: 3_600, maxMegabytes: 16, chargeFraction: 0 },
});

const question = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content: 'What is my diagnosis?' }] };

describe('the response cache keeps people apart', () => {
  it('scope user: two users asking the same never share an answer, each has their own', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig() }));
    const bob = await userWithKey(p.svc.store, 'bob', 'research');
    const cacheOf = async (key: string) => (await p.client(key).chat.completions.create(question).asResponse()).headers.get('x-quota-cache');
    expect(await cacheOf(p.alice.secret)).toBe('miss');
    expect(await cacheOf(bob.secret)).toBe('miss');
    expect(await cacheOf(p.alice.secret)).toBe('hit');
    expect(await cacheOf(bob.secret)).toBe('hit');
    expect(p.fake.requests).toHaveLength(2);
  });

  it('scope user: end users named by one service key do not share either', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig() }));
    const service = await serviceClient(p);
    const as = (user: string) => ({ headers: { 'X-Quota-User': user } });
    const cacheOf = async (user: string) => (await service.chat.completions.create(question, as(user)).asResponse()).headers.get('x-quota-cache');
    expect([await cacheOf('carol'), await cacheOf('dave'), await cacheOf('carol')]).toEqual(['miss', 'miss', 'hit']);
    expect(p.fake.requests).toHaveLength(2);
  });

  it('scope project: members of one project share, a user of another does not', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig('project') }));
    const bob = await userWithKey(p.svc.store, 'bob', 'research');
    const eve = await userWithKey(p.svc.store, 'eve', 'other');
    const cacheOf = async (key: string) => (await p.client(key).chat.completions.create(question).asResponse()).headers.get('x-quota-cache');
    expect([await cacheOf(p.alice.secret), await cacheOf(bob.secret), await cacheOf(eve.secret)]).toEqual(['miss', 'hit', 'miss']);
    // The hit is bob's: his entry, his (zero) charge.
    const [hit] = (await p.svc.store.recentEntries(3)).filter((e) => e.source === 'cache');
    expect(hit).toMatchObject({ userId: 'bob' });
  });

  it('the cache file holds no plaintext: not the answer, the prompt, the model or the user', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lq-response-cache-'));
    const p = (proxy = await startProxy({ config: cacheConfig(), responseCacheDir: dir }));
    p.fake.enqueue({ kind: 'reply', text: [' Acute', ' zygomycosis', ' of', ' the', ' left', ' tibia'] });
    const client = p.client(p.alice.secret);
    await client.chat.completions.create(question);
    await client.chat.completions.create({ ...question, stream: true });
    expect((await client.chat.completions.create(question).asResponse()).headers.get('x-quota-cache')).toBe('hit');
    expect(p.fake.requests).toHaveLength(2);

    const files = readdirSync(dir);
    expect(files).toContain(CACHE_FILE);
    // The database and its write-ahead log, as anyone with the disk would read them.
    const bytes = Buffer.concat(files.map((file) => readFileSync(path.join(dir as string, file))));
    expect(bytes.length).toBeGreaterThan(0);
    for (const plain of ['zygomycosis', 'tibia', 'diagnosis', 'gpt-4o-mini', 'alice', 'chatcmpl']) {
      expect(bytes.includes(Buffer.from(plain)), plain).toBe(false);
      expect(bytes.includes(Buffer.from(plain, 'utf16le')), `${plain} (UTF-16)`).toBe(false);
    }
  });

  it('X-Quota-Cache takes on or off only, and says so', async () => {
    const p = (proxy = await startProxy({ config: cacheConfig() }));
    await expect(p.client(p.alice.secret).chat.completions.create(question, { headers: { 'X-Quota-Cache': 'please' } })).rejects.toMatchObject({
      status: 400,
      code: 'invalid_header',
    });
    expect(p.fake.requests).toHaveLength(0);
  });
});
