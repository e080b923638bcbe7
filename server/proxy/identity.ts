import type { Context } from 'hono';
import { bearerToken, hashSecret, USER_KEY_PREFIX } from '../auth/secrets.js';
import type { RequestSubject } from '../quota/scope.js';
import type { KeyIdentity, Store } from '../store/types.js';
import { BoundedMemo } from '../util/bounded-memo.js';
import { OpenAIError } from './openai-error.js';

const END_USER_HEADER = 'x-quota-user';

/**
 * SHA-256 of the keys seen lately. Hashing costs more than the rest of identifying a request, and
 * a key's hash never changes, so this memo needs no invalidation (revocation is the store's: a
 * revoked key's hash finds no identity).
 */
const recentKeyHashes = new BoundedMemo<string, string>(10_000);

/**
 * The key a request presents, or a 401. Runs before the body is read, so a caller without a valid
 * key learns only that, whatever it sent.
 */
export async function authenticate(c: Context, store: Store): Promise<KeyIdentity> {
  const token = bearerToken(c.req.header('authorization'));
  const identity = token?.startsWith(USER_KEY_PREFIX) ? await store.findKeyByHash(recentKeyHashes.through(token, hashSecret)) : null;
  if (!identity) {
    throw new OpenAIError(
      401,
      'invalid_request_error',
      'invalid_api_key',
      token === null
        ? 'You didn\'t provide an API key. Use "Authorization: Bearer lq-…" with the key lobe-quota issued you.'
        : 'Incorrect API key provided: use an active lobe-quota key (lq-…).',
    );
  }
  return identity;
}

/**
 * Who pays for a request: the key's user, or — for a service key only — the end user it names in
 * `X-Quota-User` (or the body's OpenAI `user` field). An ordinary key naming someone is refused:
 * otherwise anyone could spend a colleague's budget.
 */
export async function payerOf(c: Context, store: Store, { key, user }: KeyIdentity, bodyUser: unknown): Promise<RequestSubject> {
  const named = c.req.header(END_USER_HEADER) ?? (key.service && typeof bodyUser === 'string' && bodyUser !== '' ? bodyUser : undefined);
  if (named === undefined || (named === user.id && !key.service)) return { userId: user.id, projectId: user.projectId, keyId: key.id };
  if (!key.service) {
    throw new OpenAIError(403, 'permission_error', 'end_user_not_allowed', 'Only a service key may name the end user (X-Quota-User); this is a personal key.');
  }
  const endUser = await store.getUser(named);
  if (!endUser) throw new OpenAIError(400, 'invalid_request_error', 'unknown_user', `X-Quota-User names an unknown user ${JSON.stringify(named)}.`, 'user');
  return { userId: endUser.id, projectId: endUser.projectId, keyId: key.id };
}

const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;

/** `X-Quota-Session` and `X-Quota-Tags: task=summarize,env=dev`, recorded in the ledger for reports. */
export function sessionAndTags(c: Context): { sessionId: string | null; tags: Record<string, string> } {
  const session = c.req.header('x-quota-session');
  if (session !== undefined && !TAG.test(session)) {
    throw new OpenAIError(400, 'invalid_request_error', 'invalid_header', 'X-Quota-Session: 1-64 characters of letters, digits, "_", ".", ":" or "-".');
  }
  const tags: Record<string, string> = {};
  const header = c.req.header('x-quota-tags');
  if (header !== undefined && header.trim() !== '') {
    const pairs = header.split(',');
    if (pairs.length > 16) throw new OpenAIError(400, 'invalid_request_error', 'invalid_header', 'X-Quota-Tags: at most 16 tags.');
    for (const pair of pairs) {
      const [name, value, extra] = pair.trim().split('=');
      if (name === undefined || value === undefined || extra !== undefined || !TAG.test(name) || !TAG.test(value)) {
        throw new OpenAIError(400, 'invalid_request_error', 'invalid_header', `X-Quota-Tags: "${pair.trim()}" is not name=value (1-64 letters, digits, "_", ".", ":" or "-" each).`);
      }
      tags[name] = value;
    }
  }
  return { sessionId: session ?? null, tags };
}
