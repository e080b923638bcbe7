// The subjects and budgets every store benchmark uses, so SQLite and PostgreSQL figures compare.
import { hashSecret, newUserKey } from '../server/auth/secrets.js';
import type { DefaultBudget } from '../server/config/schema.js';
import type { RequestSubject } from '../server/quota/scope.js';
import type { Store } from '../server/store/types.js';

export const USERS = 200;
export const PROJECTS = 20;

/** Every user 1M tokens a month, every project $50 a day, everyone together $2000 a month, keys 5 h rolling. */
export const BENCH_BUDGETS: DefaultBudget[] = [
  { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 1e12, limitUsd: null, onLimit: 'reject' },
  { scope: 'project', window: { kind: 'day', timeZone: 'America/New_York' }, limitTokens: null, limitUsd: 1e9, onLimit: 'reject' },
  { scope: 'global', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd: 1e9, onLimit: 'reject' },
  { scope: 'key', window: { kind: 'rolling', hours: 5 }, limitTokens: 1e12, limitUsd: null, onLimit: 'reject' },
];

/** USERS users in PROJECTS projects, each with one key; their subjects and key secrets. */
export async function seedDirectory(store: Store, now: number): Promise<{ subjects: RequestSubject[]; secrets: string[] }> {
  const subjects: RequestSubject[] = [];
  const secrets: string[] = [];
  for (let p = 0; p < PROJECTS; p++) await store.createProject({ id: `p${p}`, name: `Project ${p}` }, now);
  for (let u = 0; u < USERS; u++) {
    const projectId = `p${u % PROJECTS}`;
    await store.createUser({ id: `u${u}`, name: `User ${u}`, projectId }, now);
    const { secret, prefix } = newUserKey();
    await store.createKey({ id: `key_u${u}`, userId: `u${u}`, name: 'bench', service: false, secretHash: hashSecret(secret), prefix }, now);
    subjects.push({ userId: `u${u}`, projectId, keyId: `key_u${u}` });
    secrets.push(secret);
  }
  return { subjects, secrets };
}
