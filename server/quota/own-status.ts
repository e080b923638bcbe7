import { hashSecret, USER_KEY_PREFIX } from '../auth/secrets.js';
import type { Services } from '../http/app-env.js';
import type { KeyIdentity } from '../store/types.js';
import { scopesOf } from './scope.js';
import { quotaStatus, type QuotaStatus } from './status-report.js';

/** A key holder's own status: every budget their requests with this key are bound by. */
export async function ownQuotaStatus({ store, config, clock }: Pick<Services, 'store' | 'config' | 'clock'>, identity: KeyIdentity): Promise<QuotaStatus> {
  const { key, user } = identity;
  const scopes = scopesOf({ userId: user.id, projectId: user.projectId, keyId: key.id });
  return quotaStatus({ kind: 'user', id: user.id, name: user.name }, await store.budgetStates(scopes, clock.now()), config.statusLevels);
}

/** The status behind a presented `lq-` key, or null when it is not an active key. */
export async function quotaForKey(services: Pick<Services, 'store' | 'config' | 'clock'>, secret: string): Promise<QuotaStatus | null> {
  if (!secret.startsWith(USER_KEY_PREFIX)) return null;
  const identity = await services.store.findKeyByHash(hashSecret(secret));
  return identity ? ownQuotaStatus(services, identity) : null;
}
