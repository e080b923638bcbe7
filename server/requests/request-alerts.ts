import { randomUUID } from 'node:crypto';
import type { AlertEvent, RequestFacts, RequestLinks } from '../alerts/alert-event.js';
import { formatScope } from '../quota/scope.js';
import { budgetStatus } from '../quota/status-report.js';
import type { StatusLevels } from '../quota/status.js';
import { microsToUsd } from '../quota/status.js';
import type { BudgetState, QuotaRequest } from '../store/types.js';
import { unitOf } from './request-amount.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The request as its alerts carry it. */
export function requestFacts(request: QuotaRequest, state: BudgetState): RequestFacts {
  const unit = unitOf(state.budget);
  return {
    id: request.id,
    userId: request.userId,
    keyId: request.keyId,
    scope: formatScope(request.scope),
    budgetKey: request.budgetKey,
    amount: unit === 'tokens' ? request.amountTokens : microsToUsd(request.amountMicros),
    amountTokens: request.amountTokens,
    amountUsd: microsToUsd(request.amountMicros),
    reason: request.reason,
    state: request.state,
    createdAt: new Date(request.createdAt).toISOString(),
    decidedAt: iso(request.decidedAt),
    decidedBy: request.decidedBy,
    grantedTokens: request.grantedTokens,
    grantedUsd: request.grantedMicros === null ? null : microsToUsd(request.grantedMicros),
    grantId: request.grantId,
  };
}

/**
 * A request's alert: `request` when asked (with the links), `request_decided` when decided. Its
 * usage, limit and percentage are the budget's at that moment, in the request's unit.
 */
export function requestAlert(
  kind: 'request' | 'request_decided',
  request: QuotaRequest,
  context: { state: BudgetState; subjectName: string; levels: StatusLevels; now: number; links?: RequestLinks },
): AlertEvent {
  const { state, subjectName, levels, now, links } = context;
  const status = budgetStatus(state, levels);
  const tokens = unitOf(state.budget) === 'tokens';
  return {
    id: `alert_${randomUUID()}`,
    kind,
    // The requester's scope, not the budget's: channels routed to a user (`user:alice`, `user:*`)
    // hear of that user's requests and decisions whatever budget they were on (`request.scope`).
    scope: `user:${request.userId}`,
    subjectName,
    window: state.budget.window,
    threshold: null,
    percentage: status.percentage,
    usage: tokens ? status.usedTokens : status.usedUsd,
    limit: (tokens ? status.limitTokens : status.limitUsd) ?? 0,
    unit: tokens ? 'tokens' : 'usd',
    resetsAt: status.resetsAt,
    firedAt: new Date(now).toISOString(),
    projectedAt: null,
    topConsumers: [],
    request: requestFacts(request, state),
    ...(links ? { links } : {}),
  };
}
