import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../clock.js';
import { T0 } from '../../testing/harness.js';
import { hkdfSync } from 'node:crypto';
import { hkdf32, lookupIdOf, openAnswer, sealAnswer } from './answer-crypto.js';
import { CACHE_FILE, ResponseCache, type CachedAnswer } from './response-cache.js';
import { hitCharge } from './serve-hit.js';

const charge = { model: 'gpt-4o-mini', inputTokens: 100, outputTokens: 20, costMicros: 27 };
const answer = (text: string): CachedAnswer => ({
  status: 200,
  contentType: 'application/json',
  streamed: false,
  body: Buffer.from(JSON.stringify({ choices: [{ message: { content: text } }] })),
  charge,
});
const request = (n: number) => Buffer.from(`request ${n}`);

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

describe('ResponseCache', () => {
  it('finds an answer by its request alone, as it was stored', () => {
    const cache = ResponseCache.open({ ttlSeconds: 60, maxMegabytes: 1 }, new ManualClock(T0), null);
    expect(cache.store(request(1), answer('one'))).toBe(true);
    expect(cache.lookup(request(1))).toEqual(answer('one'));
    expect(cache.lookup(request(2))).toBeNull();
  });

  it('forgets an answer once its TTL is over', () => {
    const clock = new ManualClock(T0);
    const cache = ResponseCache.open({ ttlSeconds: 60, maxMegabytes: 1 }, clock, null);
    cache.store(request(1), answer('one'));
    clock.advance(59_999);
    expect(cache.lookup(request(1))).not.toBeNull();
    clock.advance(1);
    expect(cache.lookup(request(1))).toBeNull();
  });

  it('keeps under its size bound by evicting the least recently used answers', () => {
    const clock = new ManualClock(T0);
    // ~4 KB: room for a few answers of ~1 KB (the padding makes each one that size).
    const cache = ResponseCache.open({ ttlSeconds: 3_600, maxMegabytes: 4 / 1024 }, clock, null);
    const padded = (n: number) => answer(`${n}:${'x'.repeat(900)}`);
    for (const n of [1, 2, 3]) {
      cache.store(request(n), padded(n));
      clock.advance(1_000);
    }
    // 1 is used again: 2 is now the least recently used.
    expect(cache.lookup(request(1))).not.toBeNull();
    clock.advance(1_000);
    cache.store(request(4), padded(4));
    clock.advance(1_000);
    cache.store(request(5), padded(5));
    expect(cache.usage().bytes).toBeLessThanOrEqual(4 * 1024);
    expect([1, 2, 3, 4, 5].map((n) => cache.lookup(request(n)) !== null)).toEqual([true, false, false, true, true]);
  });

  it('does not store an answer above a quarter of its bound', () => {
    const cache = ResponseCache.open({ ttlSeconds: 60, maxMegabytes: 4 / 1024 }, new ManualClock(T0), null);
    expect(cache.store(request(1), answer('x'.repeat(1_100)))).toBe(false);
    expect(cache.lookup(request(1))).toBeNull();
  });

  it('writes nothing readable to its file: no answer text, no model, no request', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lq-cache-'));
    dirs.push(dir);
    const cache = ResponseCache.open({ ttlSeconds: 60, maxMegabytes: 1 }, new ManualClock(T0), dir);
    cache.store(Buffer.from('the request about quokkas'), answer('quokkas are marsupials'));
    const bytes = readdirSync(dir).map((file) => readFileSync(path.join(dir, file)).toString('latin1')).join('');
    expect(readdirSync(dir)).toContain(CACHE_FILE);
    for (const secret of ['quokka', 'marsupial', 'gpt-4o-mini', 'request about']) expect(bytes).not.toContain(secret);
    cache.close();
  });
});

describe('answer-crypto', () => {
  it('derives with HKDF-SHA256 exactly as node\'s hkdfSync does', () => {
    const canonical = Buffer.from('x'.repeat(5_000));
    expect(hkdf32(canonical, 'a label')).toEqual(Buffer.from(hkdfSync('sha256', canonical, Buffer.from('lobe-quota response cache'), 'a label', 32)));
  });

  it('opens only under the request it was sealed for, at the row it was sealed for', () => {
    const canonical = request(1);
    const id = lookupIdOf(canonical);
    const sealed = sealAnswer(canonical, id, Buffer.from('the answer'));
    expect(openAnswer(canonical, id, sealed)?.toString()).toBe('the answer');
    expect(openAnswer(request(2), id, sealed)).toBeNull();
    expect(openAnswer(canonical, lookupIdOf(request(2)), sealed)).toBeNull();
    const tampered = Buffer.from(sealed.sealed);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    expect(openAnswer(canonical, id, { nonce: sealed.nonce, sealed: tampered })).toBeNull();
    // The lookup id is not the key, nor anything the key could be read from.
    expect(sealed.sealed.includes(id)).toBe(false);
  });
});

describe('hitCharge', () => {
  it.each([
    [0, { inputTokens: 0, outputTokens: 0, costMicros: 0, savedTokens: 120, savedMicros: 27 }],
    [0.1, { inputTokens: 10, outputTokens: 2, costMicros: 3, savedTokens: 108, savedMicros: 24 }],
    [0.25, { inputTokens: 25, outputTokens: 5, costMicros: 7, savedTokens: 90, savedMicros: 20 }],
    [0.07, { inputTokens: 7, outputTokens: 2, costMicros: 2, savedTokens: 111, savedMicros: 25 }],
    [1, { inputTokens: 100, outputTokens: 20, costMicros: 27, savedTokens: 0, savedMicros: 0 }],
  ])('chargeFraction %d: each part rounded up, the rest saved', (fraction, expected) => {
    expect(hitCharge(charge, fraction)).toEqual(expected);
  });
});
