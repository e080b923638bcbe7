import type { LedgerEntry, Outcome } from '../store/types.js';

/** How many of the newest ledger entries `/admin/outcomes` reads at most. */
export const OUTCOME_SCAN_LIMIT = 20_000;

export interface OutcomeCounts {
  from: string;
  to: string;
  /**
   * Settled requests in [from, to) by how they ended. Only refusals answered as messages are in the
   * ledger (`refused`); the dashboard counts all refusals from the metrics instead.
   */
  outcomes: Record<Outcome, number>;
  /** Ledger entries read (newest first). */
  scanned: number;
  /** True when the scan stopped at its limit before reaching `from`: the counts are a lower bound. */
  truncated: boolean;
}

/** Counts ledger entries (newest first, as `Store.recentEntries` gives them) in [from, to) by outcome. */
export function countOutcomes(entries: readonly LedgerEntry[], from: number, to: number, limit: number): OutcomeCounts {
  const outcomes: Record<Outcome, number> = { ok: 0, cut_off: 0, client_abort: 0, upstream_error: 0, interrupted: 0, refused: 0 };
  let reachedFrom = false;
  for (const entry of entries) {
    if (entry.at < from) {
      reachedFrom = true;
      break;
    }
    if (entry.at < to) outcomes[entry.outcome] += 1;
  }
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    outcomes,
    scanned: entries.length,
    truncated: !reachedFrom && entries.length >= limit,
  };
}
