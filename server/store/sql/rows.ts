import { budgetKey, type Budget, type FallbackRule } from '../../quota/budgets.js';
import { formatScope, type Scope } from '../../quota/scope.js';
import type { WindowSpec } from '../../quota/window.js';
import type { ApiKey, DecidedBy, Delivery, Grant, LedgerEntry, Project, QuotaRequest, QuotaRequestState, RefusalStyle, User, UserRef } from '../types.js';

/**
 * Rows as both stores read them (the same columns in SQLite and PostgreSQL), and what they become.
 * Only a key's `service` differs: an INTEGER 0/1 in SQLite, a BOOLEAN in PostgreSQL.
 */

export interface LedgerRow {
  id: number;
  request_id: string;
  at: number;
  user_id: string;
  project_id: string | null;
  key_id: string;
  model: string;
  upstream: string | null;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_write_tokens: number;
  cache_write_1h_tokens: number;
  reasoning_tokens: number;
  cost_micros: number;
  source: LedgerEntry['source'];
  outcome: LedgerEntry['outcome'];
  latency_ms: number;
  session_id: string | null;
  tags: string | null;
  overrun_tokens: number;
  saved_tokens: number;
  saved_micros: number;
}

export interface KeyRow {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  service: number | boolean;
  refusal_style: RefusalStyle | null;
  created_at: number;
  revoked_at: number | null;
}

export interface ProjectRow {
  id: string;
  name: string;
  created_at: number;
}

export interface UserRow {
  id: string;
  name: string;
  project_id: string | null;
  created_at: number;
}

/** A user with its external ids, sorted: a JSON array's text in SQLite, an array in PostgreSQL. */
export interface UserWithIdsRow extends UserRow {
  external_ids: string | string[];
}

export const parseScopeText = (text: string): Scope => {
  if (text === 'global') return { kind: 'global' };
  const colon = text.indexOf(':');
  return { kind: text.slice(0, colon) as 'user' | 'project' | 'key' | 'upstream', id: text.slice(colon + 1) };
};

export const toProject = (r: ProjectRow): Project => ({ id: r.id, name: r.name, createdAt: r.created_at });
/** A user's external ids as both stores return them: each once, sorted by code point. */
export const sortedUnique = (ids: readonly string[]): string[] => [...new Set(ids)].sort();

export const toUserRef = (r: UserRow): UserRef => ({
  id: r.id,
  name: r.name,
  projectId: r.project_id,
  createdAt: r.created_at,
});
export const toUser = (r: UserWithIdsRow): User => ({
  ...toUserRef(r),
  externalIds: typeof r.external_ids === 'string' ? (JSON.parse(r.external_ids) as string[]) : r.external_ids,
});
export const toKey = (r: KeyRow): ApiKey => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  prefix: r.prefix,
  service: r.service === 1 || r.service === true,
  refusalStyle: r.refusal_style,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});
export const toEntry = (r: LedgerRow): LedgerEntry => ({
  id: r.id,
  requestId: r.request_id,
  at: r.at,
  userId: r.user_id,
  projectId: r.project_id,
  keyId: r.key_id,
  model: r.model,
  upstream: r.upstream,
  inputTokens: r.input_tokens,
  outputTokens: r.output_tokens,
  cachedTokens: r.cached_tokens,
  cacheWriteTokens: r.cache_write_tokens,
  cacheWrite1hTokens: r.cache_write_1h_tokens,
  reasoningTokens: r.reasoning_tokens,
  costMicros: r.cost_micros,
  source: r.source,
  outcome: r.outcome,
  latencyMs: r.latency_ms,
  sessionId: r.session_id,
  tags: r.tags === null ? {} : (JSON.parse(r.tags) as Record<string, string>),
  overrunTokens: r.overrun_tokens,
  savedTokens: r.saved_tokens,
  savedMicros: r.saved_micros,
});

/** A stored budget. PostgreSQL names its column window_spec ("window" is a keyword there) and reads it AS "window". */
export interface BudgetRow {
  id: string;
  scope: string;
  window: string;
  limit_tokens: number | null;
  limit_micros: number | null;
  thresholds: string | null;
  on_limit: Budget['onLimit'];
  downgrade_to: string | null;
  /** JSON arrays; NULL: every model, no fallback rules. */
  models: string | null;
  fallback: string | null;
}

export function toBudget(row: BudgetRow, defaultThresholds: number[]): Budget {
  const scope = parseScopeText(row.scope);
  const window = JSON.parse(row.window) as WindowSpec;
  const models = row.models === null ? null : (JSON.parse(row.models) as string[]);
  return {
    id: row.id,
    source: 'admin',
    scope,
    window,
    limitTokens: row.limit_tokens,
    limitMicros: row.limit_micros,
    thresholds: row.thresholds === null ? defaultThresholds : (JSON.parse(row.thresholds) as number[]),
    onLimit: row.on_limit,
    downgradeTo: row.downgrade_to,
    ...(models === null ? {} : { models }),
    ...(row.fallback === null ? {} : { fallback: JSON.parse(row.fallback) as FallbackRule[] }),
    key: budgetKey(scope, window, models),
  };
}

export interface DeliveryRow {
  channel: string;
  state: Delivery['state'];
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  delivered_at: number | null;
}

export const toDelivery = (d: DeliveryRow): Delivery => ({
  channel: d.channel,
  state: d.state,
  attempts: d.attempts,
  nextAttemptAt: d.next_attempt_at,
  lastError: d.last_error,
  deliveredAt: d.delivered_at,
});

/** A stored grant (the same columns in both stores). */
export interface GrantRow {
  id: string;
  budget_key: string;
  scope: string;
  tokens: number;
  micros: number;
  starts_at: number;
  ends_at: number;
  decided_by: DecidedBy;
  request_id: string | null;
  reason: string | null;
  created_at: number;
}

export const toGrant = (r: GrantRow): Grant => ({
  id: r.id,
  budgetKey: r.budget_key,
  scope: parseScopeText(r.scope),
  tokens: r.tokens,
  micros: r.micros,
  startsAt: r.starts_at,
  endsAt: r.ends_at,
  decidedBy: r.decided_by,
  requestId: r.request_id,
  reason: r.reason,
  createdAt: r.created_at,
});

/** A stored increase request (the same columns in both stores). */
export interface QuotaRequestRow {
  id: string;
  user_id: string;
  key_id: string;
  scope: string;
  budget_key: string;
  amount_tokens: number;
  amount_micros: number;
  reason: string | null;
  state: QuotaRequestState;
  created_at: number;
  decided_at: number | null;
  decided_by: DecidedBy | null;
  granted_tokens: number | null;
  granted_micros: number | null;
  grant_id: string | null;
  seen_at: number | null;
}

export const toQuotaRequest = (r: QuotaRequestRow): QuotaRequest => ({
  id: r.id,
  userId: r.user_id,
  keyId: r.key_id,
  scope: parseScopeText(r.scope),
  budgetKey: r.budget_key,
  amountTokens: r.amount_tokens,
  amountMicros: r.amount_micros,
  reason: r.reason,
  state: r.state,
  createdAt: r.created_at,
  decidedAt: r.decided_at,
  decidedBy: r.decided_by,
  grantedTokens: r.granted_tokens,
  grantedMicros: r.granted_micros,
  grantId: r.grant_id,
  seenAt: r.seen_at,
});

/** The row of a new request, as both stores insert it (named parameters for SQLite, in column order for PostgreSQL). */
export const quotaRequestRow = (q: QuotaRequest): QuotaRequestRow => ({
  id: q.id,
  user_id: q.userId,
  key_id: q.keyId,
  scope: formatScope(q.scope),
  budget_key: q.budgetKey,
  amount_tokens: q.amountTokens,
  amount_micros: q.amountMicros,
  reason: q.reason,
  state: q.state,
  created_at: q.createdAt,
  decided_at: q.decidedAt,
  decided_by: q.decidedBy,
  granted_tokens: q.grantedTokens,
  granted_micros: q.grantedMicros,
  grant_id: q.grantId,
  seen_at: q.seenAt,
});
