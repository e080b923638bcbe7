import { describe, expect, it } from 'vitest';
import { detectSpikes, type SpikeConfig } from './spikes.js';

const CONFIG: SpikeConfig = { enabled: true, factor: 5, baselineHours: 24, minTokens: 10_000 };

describe('detectSpikes', () => {
  // [case, last hour, baseline over 24 h, spikes?, ratio]
  it.each<[string, number, number, boolean, number | null]>([
    ['steady usage', 12_000, 24 * 10_000, false, null],
    ['exactly 5× is not over it', 50_000, 24 * 10_000, false, null],
    ['just over 5×', 50_001, 24 * 10_000, true, 5],
    ['20× the usual rate', 200_000, 24 * 10_000, true, 20],
    ['a big jump under the floor stays quiet', 9_000, 24 * 100, false, null],
    ['over the floor but not over 5×', 30_000, 24 * 10_000, false, null],
    ['no baseline, over the floor', 10_001, 0, true, null],
    ['no baseline, under the floor', 10_000, 0, false, null],
  ])('%s', (_, lastHourTokens, baselineTokens, spikes, ratio) => {
    const found = detectSpikes([{ scope: 'user:alice', lastHourTokens, baselineTokens }], CONFIG);
    expect(found.length).toBe(spikes ? 1 : 0);
    if (spikes) expect(found[0]?.ratio).toBe(ratio);
  });

  it('reports the trip level and hourly baseline, biggest first', () => {
    const found = detectSpikes(
      [
        { scope: 'user:bob', lastHourTokens: 60_000, baselineTokens: 24_000 },
        { scope: 'project:p', lastHourTokens: 90_000, baselineTokens: 48_000 },
        { scope: 'user:carol', lastHourTokens: 5_000, baselineTokens: 0 },
      ],
      CONFIG,
    );
    expect(found.map((s) => [s.scope, s.baselineHourlyTokens, s.tripTokens, s.ratio])).toEqual([
      ['project:p', 2_000, 10_000, 45],
      ['user:bob', 1_000, 10_000, 60],
    ]);
  });

  it('finds nothing when disabled', () => {
    expect(detectSpikes([{ scope: 'user:alice', lastHourTokens: 1e9, baselineTokens: 0 }], { ...CONFIG, enabled: false })).toEqual([]);
  });
});
