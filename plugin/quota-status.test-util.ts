import type { BudgetStatus, QuotaStatus } from '../server/quota/status-report.js';

/** `/quota` documents for the tests of what draws them: the Markdown, the card image. */

/** The instant the fixtures' resets are counted from: 8 days 4 hours before alice's reset. */
export const NOW = Date.parse('2026-11-22T12:00:00Z');

/** Alice's monthly token budget as `/quota` lists it; `over` changes any field. */
export const monthly = (over: Partial<BudgetStatus> = {}): BudgetStatus => ({
  id: 'config:user:alice|month',
  source: 'config',
  scope: 'user:alice',
  window: { kind: 'month', timeZone: 'Asia/Shanghai' },
  usedTokens: 78_500,
  reservedTokens: 0,
  limitTokens: 100_000,
  remainingTokens: 21_500,
  usedUsd: 1.23,
  reservedUsd: 0,
  limitUsd: null,
  remainingUsd: null,
  percentage: 78.5,
  status: 'normal',
  resetsAt: '2026-12-01T00:00:00+08:00',
  onLimit: 'reject',
  ...over,
});

/** A status whose top-level fields are those of `binding`, as `/quota` builds it (null: no budget applies). */
export function statusOf(binding: BudgetStatus | null, others: BudgetStatus[] = [], name = 'Alice'): QuotaStatus {
  const subject = { kind: 'user' as const, id: 'alice', name };
  if (binding === null) {
    return { subject, usage: null, limit: null, unit: null, percentage: null, remaining: null, status: 'normal', nextReset: null, budgets: others };
  }
  const usd = binding.limitTokens === null;
  return {
    subject,
    usage: usd ? binding.usedUsd : binding.usedTokens,
    limit: usd ? binding.limitUsd : binding.limitTokens,
    unit: usd ? 'usd' : 'tokens',
    percentage: binding.percentage,
    remaining: usd ? binding.remainingUsd : binding.remainingTokens,
    status: binding.status,
    nextReset: binding.resetsAt,
    budgets: [binding, ...others],
  };
}
