import { describe, expect, it } from 'vitest';
import { newRequestId } from './request-id.js';

const UUID_V7 = /^req_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRequestId', () => {
  it('is a UUIDv7 carrying the time in its first 48 bits', () => {
    const at = Date.UTC(2026, 11, 2, 8, 30, 0, 123);
    const id = newRequestId(at);
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.slice(4, 17).replace('-', ''), 16)).toBe(at);
  });

  it('sorts by time, so the ledger index grows at its right edge', () => {
    const ids = [1_000, 2_000, 2_001, 1_764_662_400_000, 1_764_662_400_001].map((t) => newRequestId(t));
    expect([...ids].sort()).toEqual(ids);
  });

  it('never repeats within one millisecond', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newRequestId(5_000)));
    expect(ids.size).toBe(10_000);
  });
});
