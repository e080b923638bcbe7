import type { Scope } from '../../quota/scope.js';
import type { ApiKey, LedgerEntry, Project, User } from '../types.js';

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
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost_micros: number;
  source: LedgerEntry['source'];
  outcome: LedgerEntry['outcome'];
  latency_ms: number;
  session_id: string | null;
  tags: string | null;
}

export interface KeyRow {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  service: number | boolean;
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

export const parseScopeText = (text: string): Scope => {
  if (text === 'global') return { kind: 'global' };
  const colon = text.indexOf(':');
  return { kind: text.slice(0, colon) as 'user' | 'project' | 'key', id: text.slice(colon + 1) };
};

export const toProject = (r: ProjectRow): Project => ({ id: r.id, name: r.name, createdAt: r.created_at });
export const toUser = (r: UserRow): User => ({
  id: r.id,
  name: r.name,
  projectId: r.project_id,
  createdAt: r.created_at,
});
export const toKey = (r: KeyRow): ApiKey => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  prefix: r.prefix,
  service: r.service === 1 || r.service === true,
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
  inputTokens: r.input_tokens,
  outputTokens: r.output_tokens,
  cachedTokens: r.cached_tokens,
  reasoningTokens: r.reasoning_tokens,
  costMicros: r.cost_micros,
  source: r.source,
  outcome: r.outcome,
  latencyMs: r.latency_ms,
  sessionId: r.session_id,
  tags: r.tags === null ? {} : (JSON.parse(r.tags) as Record<string, string>),
});
