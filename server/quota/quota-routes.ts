import { Hono } from 'hono';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { ownQuotaStatus } from './own-status.js';
import { scopeSchema, type Scope } from './scope.js';
import { quotaStatus, type QuotaStatus } from './status-report.js';
import { resolveSubject, type ResolvedSubject } from './subjects.js';

/**
 * `GET /quota`: a user key reads its own status (every budget its requests are bound by); the admin
 * token reads every subject, and the upstreams (provider accounts) that have budgets. `GET /quota/:subject` reads one (`user:alice`, `project:x`, `key:…`,
 * `global`, or a bare user id); a user may only name themselves or their own key.
 */
export function quotaRoutes({ store, config, clock }: Services) {
  const statusOf = async (subject: ResolvedSubject): Promise<QuotaStatus> =>
    quotaStatus(subject.ref, await store.budgetStates(subject.scopes, clock.now()), config.statusLevels);

  return new Hono<AppEnv>()
    .get('/', async (c) => {
      const caller = c.get('caller');
      if (caller.kind === 'user') return c.json(await ownQuotaStatus({ store, config, clock }, caller.identity));
      const scopes: Scope[] = [
        { kind: 'global' },
        ...(await store.listProjects()).map((p): Scope => ({ kind: 'project', id: p.id })),
        ...(await store.listUsers()).map((u): Scope => ({ kind: 'user', id: u.id })),
      ];
      const subjects: QuotaStatus[] = [];
      for (const scope of scopes) {
        const subject = await resolveSubject(store, scope);
        if (subject) subjects.push(await statusOf(subject));
      }
      // The provider accounts after the people: those with a budget of their own.
      for (const { name } of config.upstreams) {
        const subject = await resolveSubject(store, { kind: 'upstream', id: name });
        const status = subject && (await statusOf(subject));
        if (status && status.budgets.length > 0) subjects.push(status);
      }
      return c.json({ subjects });
    })
    .get('/:subject', async (c) => {
      const text = c.req.param('subject');
      const parsed = scopeSchema.safeParse(text.includes(':') || text === 'global' ? text : `user:${text}`);
      if (!parsed.success) throw new ApiError('invalid_request', `subject: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      const scope = parsed.data;
      const caller = c.get('caller');
      if (caller.kind === 'user') {
        const own =
          (scope.kind === 'user' && scope.id === caller.identity.user.id) ||
          (scope.kind === 'key' && scope.id === caller.identity.key.id);
        // The same answer whether or not the other subject exists: no probing for user names.
        if (!own) throw new ApiError('forbidden', 'a user key can only read its own quota');
      }
      if (scope.kind === 'upstream' && !config.upstreams.some((u) => u.name === scope.id)) {
        throw new ApiError('not_found', `subject: no upstream ${JSON.stringify(scope.id)} in the config`);
      }
      const subject = await resolveSubject(store, scope);
      if (!subject) throw new ApiError('not_found', `subject: no ${scope.kind} ${JSON.stringify(text)}`);
      return c.json(await statusOf(subject));
    });
}
