import type { Budget } from '../quota/budgets.js';
import { formatScope } from '../quota/scope.js';
import { microsToUsd } from '../quota/status.js';
import type { ApiKey, Hold, Project, User } from '../store/types.js';

/** How stored records leave the service: ISO times, dollars, never a secret or a hash. */
const iso = (epochMs: number): string => new Date(epochMs).toISOString();

export const projectView = (p: Project) => ({ id: p.id, name: p.name, createdAt: iso(p.createdAt) });

export const userView = (u: User) => ({ id: u.id, name: u.name, projectId: u.projectId, externalIds: u.externalIds, createdAt: iso(u.createdAt) });

export const keyView = (k: ApiKey) => ({
  id: k.id,
  userId: k.userId,
  name: k.name,
  prefix: k.prefix,
  service: k.service,
  refusalStyle: k.refusalStyle,
  createdAt: iso(k.createdAt),
  revokedAt: k.revokedAt === null ? null : iso(k.revokedAt),
});

export const budgetView = (b: Budget) => ({
  id: b.id,
  source: b.source,
  scope: formatScope(b.scope),
  window: b.window,
  limitTokens: b.limitTokens,
  limitUsd: b.limitMicros === null ? null : microsToUsd(b.limitMicros),
  thresholds: b.thresholds,
  onLimit: b.onLimit,
  downgradeTo: b.downgradeTo,
  models: b.models ?? null,
  fallback: b.fallback ?? [],
});

export const holdView = (h: Hold) => ({
  id: h.id,
  userId: h.subject.userId,
  projectId: h.subject.projectId,
  keyId: h.subject.keyId,
  tokens: h.tokens,
  usd: microsToUsd(h.micros),
  outputTokens: h.outputTokens,
  createdAt: iso(h.createdAt),
  expiresAt: iso(h.expiresAt),
});
