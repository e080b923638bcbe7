import type { MiddlewareHandler } from 'hono';
import { bearerToken, hashSecret, matchesHash, USER_KEY_PREFIX } from '../auth/secrets.js';
import type { AppEnv, Services } from './app-env.js';
import { ApiError } from './errors.js';

/** The 401 of a token that is neither the admin token nor an active user key. */
export const UNKNOWN_TOKEN = 'unknown or revoked token';

/** Accepts the admin token or an active user key and records who called. */
export const authenticate = ({ store, adminTokenHash }: Pick<Services, 'store' | 'adminTokenHash'>): MiddlewareHandler<AppEnv> =>
  async function authenticate(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw new ApiError('unauthorized', 'missing "Authorization: Bearer <token>" header');
    if (matchesHash(token, adminTokenHash)) {
      c.set('caller', { kind: 'admin' });
    } else {
      const identity = token.startsWith(USER_KEY_PREFIX) ? await store.findKeyByHash(hashSecret(token)) : null;
      if (identity === null) throw new ApiError('unauthorized', UNKNOWN_TOKEN);
      c.set('caller', { kind: 'user', identity });
    }
    await next();
  };

export const requireAdmin: MiddlewareHandler<AppEnv> = async function requireAdmin(c, next) {
  if (c.get('caller').kind !== 'admin') {
    throw new ApiError('forbidden', 'admin routes need the admin token; a user key only reads its own /quota');
  }
  await next();
};
