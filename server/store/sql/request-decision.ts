import type { Grant, QuotaRequest, QuotaRequestInput, RequestDecision } from '../types.js';

/**
 * The pure part of creating and deciding increase requests, shared by both stores: what the new
 * row is, what a decision makes of it, and the grant an approval creates.
 */

export const newRequest = (input: QuotaRequestInput, id: string, now: number): QuotaRequest => ({
  ...input,
  id,
  state: 'open',
  createdAt: now,
  decidedAt: null,
  decidedBy: null,
  grantedTokens: null,
  grantedMicros: null,
  grantId: null,
  seenAt: null,
});

export const newGrantId = (): string => `grant_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;

/** The grant an approval makes: on the request's budget, decided as the request is, with its reason. */
export function grantOf(request: QuotaRequest, decision: RequestDecision, now: number): Grant | null {
  if (decision.state !== 'approved') return null;
  return {
    id: newGrantId(),
    budgetKey: request.budgetKey,
    scope: request.scope,
    ...decision.grant,
    decidedBy: decision.decidedBy,
    requestId: request.id,
    reason: request.reason,
    createdAt: now,
  };
}

/** The request once decided (it must be open). */
export const decided = (request: QuotaRequest, decision: RequestDecision, grant: Grant | null, now: number): QuotaRequest => ({
  ...request,
  state: decision.state,
  decidedAt: now,
  decidedBy: decision.decidedBy,
  grantedTokens: grant?.tokens ?? null,
  grantedMicros: grant?.micros ?? null,
  grantId: grant?.id ?? null,
});
