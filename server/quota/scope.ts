import { z } from 'zod';
import { subjectIdSchema } from './budget-schema.js';

export type ScopeKind = 'global' | 'project' | 'user' | 'key' | 'upstream';

/**
 * Who a budget applies to: a party of the request, or (`upstream:NAME`) the provider account that
 * serves it, whose own plan has a limit too.
 */
export type Scope = { kind: 'global' } | { kind: 'project' | 'user' | 'key' | 'upstream'; id: string };

/** The parties of one request: every scope that applies to it. */
export interface RequestSubject {
  userId: string;
  projectId: string | null;
  keyId: string;
}

export const formatScope = (scope: Scope): string => (scope.kind === 'global' ? 'global' : `${scope.kind}:${scope.id}`);

/**
 * Where a request goes: the model asked of the upstream and the upstream (provider account) that
 * serves it. Budgets that name models apply only to a request for one of them, and an upstream's
 * budgets only to the requests it serves. null: not known (a store call made without it).
 */
export interface Route {
  model: string;
  upstream: string | null;
}

/**
 * Scopes that apply to a request, narrowest first (the order budgets are listed in); the upstream
 * that serves it, when known, last.
 */
export function scopesOf(subject: RequestSubject, upstream: string | null = null): Scope[] {
  const scopes: Scope[] = [
    { kind: 'key', id: subject.keyId },
    { kind: 'user', id: subject.userId },
  ];
  if (subject.projectId !== null) scopes.push({ kind: 'project', id: subject.projectId });
  scopes.push({ kind: 'global' });
  if (upstream !== null) scopes.push({ kind: 'upstream', id: upstream });
  return scopes;
}

/** `global`, `project:ID`, `user:ID`, `key:ID` or `upstream:NAME`. */
export const scopeSchema = z.string().transform((text, ctx): Scope => {
  if (text === 'global') return { kind: 'global' };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  if (kind !== 'project' && kind !== 'user' && kind !== 'key' && kind !== 'upstream') {
    ctx.addIssue({
      code: 'custom',
      message: `unknown scope ${JSON.stringify(text)}: use "global", "project:ID", "user:ID", "key:ID" or "upstream:NAME"`,
    });
    return z.NEVER;
  }
  const id = subjectIdSchema.safeParse(text.slice(colon + 1));
  if (!id.success) {
    ctx.addIssue({ code: 'custom', message: `scope id ${id.error.issues[0]?.message ?? 'is invalid'}` });
    return z.NEVER;
  }
  return { kind, id: id.data };
});
