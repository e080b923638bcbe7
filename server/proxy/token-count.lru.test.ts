import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTokenCounter } from './token-count.js';

/** The cache's reference: one Map in recency order (a hit is deleted and set again), the oldest dropped first. */
class ReferenceLru {
  private readonly map = new Map<string, true>();
  hits = 0;
  misses = 0;

  constructor(private readonly max: number) {}

  see(key: string): void {
    if (this.map.has(key)) {
      this.hits++;
      this.map.delete(key);
      this.map.set(key, true);
      return;
    }
    this.misses++;
    if (this.max === 0) return;
    this.map.set(key, true);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  get size(): number {
    return this.map.size;
  }
}

const message = fc.record({ role: fc.constantFrom('user', 'assistant', 'system'), content: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'hello there', 'x'.repeat(1500)) });

describe('the per-message count cache: least recently used first out, over any sequence of messages', () => {
  it('hits, misses and size are those of a plain LRU of the same keys', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.array(fc.array(message, { minLength: 1, maxLength: 3 }), { maxLength: 40 }), (cacheSize, turns) => {
        const counter = createTokenCounter({ cacheSize });
        const reference = new ReferenceLru(cacheSize);
        for (const messages of turns) {
          counter.countChatPrompt('gpt-4o', { messages });
          for (const m of messages) reference.see(`${m.role}:${m.content}`);
          expect(counter.stats()).toEqual({ hits: reference.hits, misses: reference.misses, size: reference.size });
        }
      }),
      { numRuns: 300 },
    );
  });
});
