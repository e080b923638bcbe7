import { Hono } from 'hono';
import { hashSecret, newId, newUserKey } from '../auth/secrets.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { jsonBody } from '../http/validate.js';
import type { Created, ExternalIdChange, Store, User, UserChange } from '../store/types.js';
import { createKeyBody, createProjectBody, createUserBody, linkExternalIdBody, patchKeyBody, patchProjectBody, patchUserBody } from './schemas.js';
import { keyView, projectView, userView } from './views.js';

/** Turns a refused create into the HTTP error that names the field. */
function created<T>(result: Created<T>, what: string, ids: Record<string, unknown>): T {
  if (result.ok) return result.value;
  const value = JSON.stringify(ids[result.field] ?? null);
  if (result.reason === 'exists') throw new ApiError('conflict', `${result.field}: ${what} ${value} already exists`);
  throw new ApiError('not_found', `${result.field}: no ${result.field.replace(/Id$/, '')} ${value}`);
}

/** Turns a refused link or unlink into the HTTP error that says who holds the external id. */
function externalIdChanged(result: ExternalIdChange, userId: string, externalId: string): { user: User; changed: boolean } {
  if (result.ok) return result;
  const user = JSON.stringify(userId);
  const id = JSON.stringify(externalId);
  switch (result.reason) {
    case 'missing-user':
      throw new ApiError('not_found', `no user ${user}`);
    case 'not-linked':
      throw new ApiError('not_found', `externalId: ${id} is not linked to any user`);
    case 'taken':
      throw new ApiError(
        'conflict',
        `externalId: ${id} is linked to user ${JSON.stringify(result.userId)}; unlink it there first (DELETE /admin/users/${encodeURIComponent(result.userId)}/external-ids/${encodeURIComponent(externalId)})`,
      );
  }
}

/** Turns a refused rename or move into the HTTP error that names the field. */
function userChanged(result: UserChange, userId: string, projectId: string | null | undefined): User {
  if (result.ok) return result.user;
  if (result.reason === 'missing-user') throw new ApiError('not_found', `no user ${JSON.stringify(userId)}`);
  throw new ApiError('not_found', `projectId: no project ${JSON.stringify(projectId ?? null)}`);
}

/** A user creation refused because one of its external ids is someone else's: who has it. */
async function externalIdTaken(store: Store, externalId: string): Promise<ApiError> {
  const owner = await store.findUserByExternalId(externalId);
  return new ApiError('conflict', `externalIds: ${JSON.stringify(externalId)} is linked to user ${JSON.stringify(owner?.id ?? '(unknown)')} already`);
}

/**
 * What linking `externalId` means when a user has that id itself (typically one created on first
 * sight, before anyone linked it): requests naming it charged that user until now, and charge the
 * linked person from now on. That user keeps its history; nothing is moved.
 */
async function previousPayer(store: Store, userId: string, externalId: string) {
  const same = externalId === userId ? null : await store.getUser(externalId);
  if (!same) return { previousPayer: null };
  return {
    previousPayer: { id: same.id, name: same.name },
    note:
      `Requests naming ${JSON.stringify(externalId)} charged the user ${JSON.stringify(same.id)} until now and charge ${JSON.stringify(userId)} from now on. ` +
      `${JSON.stringify(same.id)} keeps its usage history and budgets; nothing is moved.`,
  };
}

/** Projects, users and keys: `/admin/projects`, `/admin/users`, `/admin/keys` (create, list, rename, move, link, revoke). */
export function directoryRoutes({ store, clock }: Services) {
  return new Hono<AppEnv>()
    .post('/projects', async (c) => {
      const body = await jsonBody(c, createProjectBody);
      const project = created(await store.createProject({ id: body.id, name: body.name ?? body.id }, clock.now()), 'project', body);
      return c.json(projectView(project), 201);
    })
    .get('/projects', async (c) => c.json({ projects: (await store.listProjects()).map(projectView) }))
    .patch('/projects/:id', async (c) => {
      const { name } = await jsonBody(c, patchProjectBody);
      const project = await store.renameProject(c.req.param('id'), name);
      if (!project) throw new ApiError('not_found', `no project ${JSON.stringify(c.req.param('id'))}`);
      return c.json(projectView(project));
    })

    .post('/users', async (c) => {
      const body = await jsonBody(c, createUserBody);
      const result = await store.createUser(
        { id: body.id, name: body.name ?? body.id, projectId: body.projectId ?? null, externalIds: body.externalIds ?? [] },
        clock.now(),
      );
      if (!result.ok && result.field === 'externalIds' && result.value !== undefined) throw await externalIdTaken(store, result.value);
      return c.json(userView(created(result, 'user', body)), 201);
    })
    .get('/users', async (c) => c.json({ users: (await store.listUsers()).map(userView) }))
    .get('/users/:id', async (c) => {
      const user = await store.getUser(c.req.param('id'));
      if (!user) throw new ApiError('not_found', `no user ${JSON.stringify(c.req.param('id'))}`);
      return c.json(userView(user));
    })
    // Requests admitted from now on are charged to the new project; past entries keep theirs.
    .patch('/users/:id', async (c) => {
      const userId = c.req.param('id');
      const body = await jsonBody(c, patchUserBody);
      const change = { ...(body.name === undefined ? {} : { name: body.name }), ...(body.projectId === undefined ? {} : { projectId: body.projectId }) };
      return c.json(userView(userChanged(await store.updateUser(userId, change), userId, body.projectId)));
    })
    .post('/users/:id/external-ids', async (c) => {
      const userId = c.req.param('id');
      const { externalId } = await jsonBody(c, linkExternalIdBody);
      const { user, changed } = externalIdChanged(await store.linkExternalId(userId, externalId, clock.now()), userId, externalId);
      return c.json({ user: userView(user), externalId, ...(await previousPayer(store, userId, externalId)) }, changed ? 201 : 200);
    })
    .delete('/users/:id/external-ids/:externalId', async (c) => {
      const userId = c.req.param('id');
      const externalId = c.req.param('externalId');
      const { user } = externalIdChanged(await store.unlinkExternalId(userId, externalId), userId, externalId);
      return c.json({ user: userView(user), externalId });
    })

    .post('/keys', async (c) => {
      const body = await jsonBody(c, createKeyBody);
      const { secret, prefix } = newUserKey();
      const key = created(
        await store.createKey(
          {
            id: newId('key'),
            userId: body.userId,
            name: body.name,
            service: body.service,
            refusalStyle: body.refusalStyle,
            secretHash: hashSecret(secret),
            prefix,
          },
          clock.now(),
        ),
        'key',
        body,
      );
      // The only time the secret is ever shown.
      return c.json({ ...keyView(key), key: secret }, 201);
    })
    .get('/keys', async (c) => c.json({ keys: (await store.listKeys(c.req.query('userId'))).map(keyView) }))
    .patch('/keys/:id', async (c) => {
      const { refusalStyle } = await jsonBody(c, patchKeyBody);
      const key = await store.setKeyRefusalStyle(c.req.param('id'), refusalStyle);
      if (!key) throw new ApiError('not_found', `no key ${JSON.stringify(c.req.param('id'))}`);
      return c.json(keyView(key));
    })
    .delete('/keys/:id', async (c) => {
      const key = await store.revokeKey(c.req.param('id'), clock.now());
      if (!key) throw new ApiError('not_found', `no key ${JSON.stringify(c.req.param('id'))}`);
      return c.json(keyView(key));
    });
}
