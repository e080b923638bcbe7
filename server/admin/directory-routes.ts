import { Hono } from 'hono';
import { hashSecret, newId, newUserKey } from '../auth/secrets.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { jsonBody } from '../http/validate.js';
import type { Created } from '../store/types.js';
import { createKeyBody, createProjectBody, createUserBody } from './schemas.js';
import { keyView, projectView, userView } from './views.js';

/** Turns a refused create into the HTTP error that names the field. */
function created<T>(result: Created<T>, what: string, ids: Record<string, unknown>): T {
  if (result.ok) return result.value;
  const value = JSON.stringify(ids[result.field] ?? null);
  if (result.reason === 'exists') throw new ApiError('conflict', `${result.field}: ${what} ${value} already exists`);
  throw new ApiError('not_found', `${result.field}: no ${result.field.replace(/Id$/, '')} ${value}`);
}

/** Projects, users and keys: `/admin/projects`, `/admin/users`, `/admin/keys`. */
export function directoryRoutes({ store, clock }: Services) {
  return new Hono<AppEnv>()
    .post('/projects', async (c) => {
      const body = await jsonBody(c, createProjectBody);
      const project = created(await store.createProject({ id: body.id, name: body.name ?? body.id }, clock.now()), 'project', body);
      return c.json(projectView(project), 201);
    })
    .get('/projects', async (c) => c.json({ projects: (await store.listProjects()).map(projectView) }))

    .post('/users', async (c) => {
      const body = await jsonBody(c, createUserBody);
      const user = created(
        await store.createUser({ id: body.id, name: body.name ?? body.id, projectId: body.projectId ?? null }, clock.now()),
        'user',
        body,
      );
      return c.json(userView(user), 201);
    })
    .get('/users', async (c) => c.json({ users: (await store.listUsers()).map(userView) }))
    .get('/users/:id', async (c) => {
      const user = await store.getUser(c.req.param('id'));
      if (!user) throw new ApiError('not_found', `no user ${JSON.stringify(c.req.param('id'))}`);
      return c.json(userView(user));
    })

    .post('/keys', async (c) => {
      const body = await jsonBody(c, createKeyBody);
      const { secret, prefix } = newUserKey();
      const key = created(
        await store.createKey(
          { id: newId('key'), userId: body.userId, name: body.name, service: body.service, secretHash: hashSecret(secret), prefix },
          clock.now(),
        ),
        'key',
        body,
      );
      // The only time the secret is ever shown.
      return c.json({ ...keyView(key), key: secret }, 201);
    })
    .get('/keys', async (c) => c.json({ keys: (await store.listKeys(c.req.query('userId'))).map(keyView) }))
    .delete('/keys/:id', async (c) => {
      const key = await store.revokeKey(c.req.param('id'), clock.now());
      if (!key) throw new ApiError('not_found', `no key ${JSON.stringify(c.req.param('id'))}`);
      return c.json(keyView(key));
    });
}
