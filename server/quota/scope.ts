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

/** The scopes a key's own requests count against (no upstream): what its holder's GET /quota shows. */
export const scopesOfKey = ({ key, user }: { key: { id: string }; user: { id: string; projectId: string | null } }): Scope[] =>
  scopesOf({ userId: user.id, projectId: user.projectId, keyId: key.id });

type SubjectKind = Exclude<ScopeKind, 'global'>;

/** The scopes of some kinds: one member per kind. */
type ScopeOf<K extends ScopeKind> = K extends 'global' ? { kind: 'global' } : { kind: K; id: string };

/** How a kind of scope is written: `user:ID`, `upstream:NAME`. */
const written = (kind: ScopeKind): string => (kind === 'global' ? 'global' : kind === 'upstream' ? 'upstream:NAME' : `${kind}:ID`);

/**
 * A scope's text, of these kinds only: `global` (when listed) or `KIND:ID`, the id readable and
 * scope-safe. A refusal lists the kinds accepted.
 */
export function scopeSchemaOf<K extends ScopeKind>(kinds: readonly K[]) {
  const forms = kinds.map((k) => `"${written(k)}"`);
  const accepted = forms.length > 1 ? `${forms.slice(0, -1).join(', ')} or ${forms.at(-1) as string}` : (forms[0] as string);
  return z.string().transform((text, ctx): ScopeOf<K> => {
    if (text === 'global' && (kinds as readonly ScopeKind[]).includes('global')) return { kind: 'global' } as ScopeOf<K>;
    const colon = text.indexOf(':');
    const kind = (colon < 0 ? '' : text.slice(0, colon)) as SubjectKind;
    if (kind === ('global' as string) || !(kinds as readonly ScopeKind[]).includes(kind)) {
      ctx.addIssue({ code: 'custom', message: `unknown scope ${JSON.stringify(text)}: use ${accepted}` });
      return z.NEVER;
    }
    const id = subjectIdSchema.safeParse(text.slice(colon + 1));
    if (!id.success) {
      ctx.addIssue({ code: 'custom', message: `scope id ${id.error.issues[0]?.message ?? 'is invalid'}` });
      return z.NEVER;
    }
    return { kind, id: id.data } as ScopeOf<K>;
  });
}

/** `global`, `project:ID`, `user:ID`, `key:ID` or `upstream:NAME`. */
export const scopeSchema = scopeSchemaOf(['global', 'project', 'user', 'key', 'upstream']);
