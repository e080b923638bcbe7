import type { OrphanedHold, SettleResult, Store, Usage } from '../store/types.js';
import { usageCostMicros } from './pricing.js';

/**
 * What the request of an orphaned hold (its process died mid-request) is charged: its prompt and the
 * output counted when its hold last grew, priced as every settle is. The proxy's own count, as a
 * stream cut short by its client would be charged; what was delivered after the last extension (at
 * most one lease) is not known to anyone any more.
 */
export function recoveredUsage({ hold, pending, deliveredTokens, updatedAt }: OrphanedHold): Usage {
  const counted = { inputTokens: pending.inputTokens, outputTokens: deliveredTokens, cachedTokens: 0, reasoningTokens: 0 };
  return {
    model: pending.model,
    upstream: pending.upstream ?? null,
    ...counted,
    costMicros: pending.price ? usageCostMicros(pending.price, counted) : 0,
    source: 'recovered',
    outcome: 'interrupted',
    // The request ran at least until its hold last grew.
    latencyMs: Math.max(0, updatedAt - hold.createdAt),
    sessionId: pending.sessionId,
    tags: pending.tags,
  };
}

/**
 * Settles the orphaned holds the store hands out at `now`, each through the normal settle (so
 * thresholds fire and alerts go out as for any request), dated at the recovery. One whose settle
 * fails stays where it is, and the store hands it out again (the next start, or a minute later).
 */
export async function recoverHolds(
  store: Pick<Store, 'orphanedHolds' | 'settle'>,
  now: number,
  log: (message: string) => void = (m) => console.error(`[lobe-quota] ${m}`),
): Promise<SettleResult[]> {
  const orphans = await store.orphanedHolds(now);
  // Together, so that they share the store's group commits.
  const outcomes = await Promise.allSettled(
    orphans.map((orphan) => store.settle({ holdId: orphan.hold.id, subject: orphan.hold.subject, usage: recoveredUsage(orphan), now })),
  );
  const settled: SettleResult[] = [];
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') settled.push(outcome.value);
    else log(`could not settle the interrupted request ${orphans[i]?.hold.id ?? '?'}: ${(outcome.reason as Error).message}`);
  });
  return settled;
}
