import { z } from 'zod';
import { subjectIdSchema } from './budget-schema.js';

export type ScopeKind = 'global' | 'project' | 'user' | 'key';

/** Who a budget applies to. */
export type Scope = { kind: 'global' } | { kind: 'project' | 'user' | 'key'; id: string };

/** The parties of one request: every scope that applies to it. */
export interface RequestSubject {
  userId: string;
  projectId: string | null;
  keyId: string;
}

export const formatScope = (scope: Scope): string => (scope.kind === 'global' ? 'global' : `${scope.kind}:${scope.id}`);

/** Scopes that apply to a request, narrowest first (the order budgets are listed in). */
export function scopesOf(subject: RequestSubject): Scope[] {
  const scopes: Scope[] = [
    { kind: 'key', id: subject.keyId },
    { kind: 'user', id: subject.userId },
  ];
  if (subject.projectId !== null) scopes.push({ kind: 'project', id: subject.projectId });
  scopes.push({ kind: 'global' });
  return scopes;
}

/** `global`, `project:ID`, `user:ID` or `key:ID`. */
export const scopeSchema = z.string().transform((text, ctx): Scope => {
  if (text === 'global') return { kind: 'global' };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  if (kind !== 'project' && kind !== 'user' && kind !== 'key') {
    ctx.addIssue({
      code: 'custom',
      message: `unknown scope ${JSON.stringify(text)}: use "global", "project:ID", "user:ID" or "key:ID"`,
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
