import { formatScope } from '../server/quota/scope.js';
import { microsToUsd } from '../server/quota/status.js';
import type { Asked } from '../server/requests/request-service.js';
import type { QuotaRequest } from '../server/store/types.js';

/** What increase requests look like in MCP answers (English: the model relays them in the user's language). */

const amountText = (tokens: number, micros: number): string =>
  tokens > 0 ? `${tokens.toLocaleString('en-US')} tokens` : `$${microsToUsd(micros).toLocaleString('en-US', { maximumFractionDigits: 6 })}`;

/** The answer of request_quota_increase. */
export function requestAnswer({ request, grant }: Asked): string {
  const asked = amountText(request.amountTokens, request.amountMicros);
  const on = formatScope(request.scope);
  if (grant) {
    return `Approved at once by policy: +${amountText(grant.tokens, grant.micros)} granted on ${on} until ${new Date(grant.endsAt).toISOString()} (request ${request.id}).`;
  }
  return `Asked the admins for ${asked} more on ${on} (request ${request.id}); they have been notified. The next check_quota will say whether it was approved.`;
}

/** One line per decision the user has not been told yet: "approved (+N granted …)" or "denied". */
export function decisionLines(decided: readonly QuotaRequest[]): string[] {
  return decided.map((r) => {
    const asked = amountText(r.amountTokens, r.amountMicros);
    if (r.state === 'approved') {
      const granted = amountText(r.grantedTokens ?? 0, r.grantedMicros ?? 0);
      return `Your request ${r.id} for ${asked} more on ${formatScope(r.scope)} was approved (+${granted} granted, by ${r.decidedBy ?? 'an admin'}), for the rest of the budget’s current window.`;
    }
    return `Your request ${r.id} for ${asked} more on ${formatScope(r.scope)} was denied.`;
  });
}
