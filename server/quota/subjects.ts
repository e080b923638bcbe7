import type { Store } from '../store/types.js';
import type { Scope } from './scope.js';
import type { SubjectRef } from './status-report.js';

export interface ResolvedSubject {
  ref: SubjectRef;
  /** Every scope whose budgets bind this subject's requests, narrowest first. */
  scopes: Scope[];
}

/**
 * Looks a scope up. A user is bound by its own, its project's and the global budgets; a key also by
 * its own. Returns null for an unknown subject.
 */
export async function resolveSubject(store: Store, scope: Scope): Promise<ResolvedSubject | null> {
  const global: Scope = { kind: 'global' };
  switch (scope.kind) {
    case 'global':
      return { ref: { kind: 'global', id: 'global', name: 'Global' }, scopes: [global] };
    case 'project': {
      const project = await store.getProject(scope.id);
      return project && { ref: { kind: 'project', id: project.id, name: project.name }, scopes: [scope, global] };
    }
    case 'user': {
      const user = await store.getUser(scope.id);
      if (!user) return null;
      const scopes: Scope[] = [scope];
      if (user.projectId !== null) scopes.push({ kind: 'project', id: user.projectId });
      scopes.push(global);
      return { ref: { kind: 'user', id: user.id, name: user.name }, scopes };
    }
    case 'upstream':
      // A provider account: its budgets alone bind what it serves (it has no name of its own but the config's).
      return { ref: { kind: 'upstream', id: scope.id, name: `Upstream ${scope.id}` }, scopes: [scope] };
    case 'key': {
      const key = await store.getKey(scope.id);
      const owner = key && (await resolveSubject(store, { kind: 'user', id: key.userId }));
      return key && owner && { ref: { kind: 'key', id: key.id, name: key.name }, scopes: [scope, ...owner.scopes] };
    }
  }
}
