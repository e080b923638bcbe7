import { describe, expect, it } from 'vitest';
import { BoundedMemo } from './bounded-memo.js';

describe('BoundedMemo', () => {
  it('computes a key once, null and undefined values included', () => {
    const memo = new BoundedMemo<string, string | null | undefined>(10);
    let calls = 0;
    const compute = (key: string) => {
      calls++;
      return key === 'a' ? null : key === 'b' ? undefined : key.toUpperCase();
    };
    for (let round = 0; round < 3; round++) {
      expect(memo.through('a', compute)).toBeNull();
      expect(memo.through('b', compute)).toBeUndefined();
      expect(memo.through('c', compute)).toBe('C');
    }
    expect(calls).toBe(3);
  });

  it('never holds more than its bound, and still answers right after clearing', () => {
    const memo = new BoundedMemo<number, number>(100);
    for (let i = 0; i < 1_000; i++) {
      expect(memo.through(i, (k) => k * 2)).toBe(i * 2);
      expect(memo.size).toBeLessThanOrEqual(100);
    }
    expect(memo.through(3, (k) => k * 2)).toBe(6);
  });
});
