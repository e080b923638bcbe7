import type { MiddlewareHandler } from 'hono';
import { bearerToken, hashSecret, matchesHash, USER_KEY_PREFIX } from '../auth/secrets.js';
import type { AppEnv, Services } from '../http/app-env.js';
import { UNKNOWN_TOKEN } from '../http/authenticate.js';
import { ApiError } from '../http/errors.js';
import type { BudgetState, KeyIdentity } from '../store/types.js';
import { scopesOfKey } from './scope.js';
import { quotaStatus, type QuotaStatus } from './status-report.js';

type StatusServices = Pick<Services, 'store' | 'config' | 'clock'>;

const ownStatus = ({ config }: StatusServices, { user }: KeyIdentity, states: BudgetState[]): QuotaStatus =>
  quotaStatus({ kind: 'user', id: user.id, name: user.name }, states, config.statusLevels);

/** A key holder's own status: every budget their requests with this key are bound by. */
export async function ownQuotaStatus(services: StatusServices, identity: KeyIdentity): Promise<QuotaStatus> {
  return ownStatus(services, identity, await services.store.budgetStates(scopesOfKey(identity), services.clock.now()));
}

/** The status behind a presented `lq-` key, or null when it is not an active key. */
export async function quotaForKey(services: StatusServices, secret: string): Promise<QuotaStatus | null> {
  if (!secret.startsWith(USER_KEY_PREFIX)) return null;
  const found = await services.store.keyStates(hashSecret(secret), services.clock.now());
  return found && ownStatus(services, found.identity, found.states);
}

/**
 * `GET /quota` with a user key, ahead of the authentication middleware: the key and its budgets
 * are read together (one statement on PostgreSQL), where authenticating first would cost a round
 * trip of its own. The answer and its errors are those of the authenticated route; anything but
 * a user key (the admin token, no token) goes on to it.
 */
export const ownQuotaRoute =
  (services: StatusServices & Pick<Services, 'adminTokenHash'>): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null || !token.startsWith(USER_KEY_PREFIX) || matchesHash(token, services.adminTokenHash)) return next();
    const status = await quotaForKey(services, token);
    if (status === null) throw new ApiError('unauthorized', UNKNOWN_TOKEN);
    return c.json(status);
  };
