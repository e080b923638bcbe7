export interface SpikeConfig {
  enabled: boolean;
  /** Alert when the last hour exceeds this many times the baseline's hourly average. */
  factor: number;
  /** Hours before the last hour that make the baseline. */
  baselineHours: number;
  /** Below this many tokens in the last hour nothing is a spike, whatever the ratio. */
  minTokens: number;
}

/** One subject's usage as the detection pass reads it from the ledger. */
export interface SubjectUsage {
  /** 'user:alice', 'project:research', 'key:key_1' */
  scope: string;
  lastHourTokens: number;
  /** Tokens over all `baselineHours` hours before the last hour. */
  baselineTokens: number;
}

export interface Spike extends SubjectUsage {
  baselineHourlyTokens: number;
  /** The level the last hour went over: max(minTokens, factor × baseline hourly). */
  tripTokens: number;
  /** One decimal; null when the baseline is zero (a subject with no usage before this hour). */
  ratio: number | null;
}

/**
 * The subjects whose last hour is a spike. The `minTokens` floor keeps small subjects quiet: going
 * from 10 to 100 tokens an hour is ten times the rate and nobody's concern. A subject with no
 * baseline at all spikes once it passes the floor, since nothing usual explains it either.
 */
export function detectSpikes(usage: readonly SubjectUsage[], config: SpikeConfig): Spike[] {
  if (!config.enabled) return [];
  const spikes: Spike[] = [];
  for (const u of usage) {
    const baselineHourlyTokens = u.baselineTokens / config.baselineHours;
    const tripTokens = Math.max(config.minTokens, config.factor * baselineHourlyTokens);
    if (u.lastHourTokens <= tripTokens) continue;
    const ratio = baselineHourlyTokens === 0 ? null : Math.round((u.lastHourTokens / baselineHourlyTokens) * 10) / 10;
    spikes.push({ ...u, baselineHourlyTokens: Math.round(baselineHourlyTokens), tripTokens: Math.round(tripTokens), ratio });
  }
  return spikes.sort((a, b) => b.lastHourTokens - a.lastHourTokens || (a.scope < b.scope ? -1 : 1));
}
