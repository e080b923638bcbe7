import type { Context } from 'hono';
import { bearerToken, hashSecret, USER_KEY_PREFIX } from '../auth/secrets.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import { subjectIdSchema } from '../quota/budget-schema.js';
import type { RequestSubject } from '../quota/scope.js';
import type { KeyIdentity, Store, UserRef } from '../store/types.js';
import { BoundedMemo } from '../util/bounded-memo.js';
import type { MaybePromise } from '../util/maybe-sync.js';
import type { ClientKey } from './dialects/dialect.js';
import { OpenAIError } from './openai-error.js';

const END_USER_HEADER = 'x-quota-user';

/** OpenAI's way (and the default): `Authorization: Bearer lq-…`. */
export const BEARER_CLIENT_KEY: ClientKey = {
  read: (request) => bearerToken(request.header('authorization')),
  hint: 'Authorization: Bearer lq-…',
};

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
export async function authenticate(c: Context, store: Store, clientKey: ClientKey = BEARER_CLIENT_KEY): Promise<KeyIdentity> {
  const token = clientKey.read(c.req);
  const identity = token?.startsWith(USER_KEY_PREFIX) ? await store.findKeyByHash(recentKeyHashes.through(token, hashSecret)) : null;
  if (!identity) {
    throw new OpenAIError(
      401,
      'invalid_request_error',
      'invalid_api_key',
      token === null
        ? `You didn't provide an API key. Use "${clientKey.hint}" with the key lobe-quota issued you.`
        : 'Incorrect API key provided: use an active lobe-quota key (lq-…).',
    );
  }
  return identity;
}

/** Where a service key named the end user: the header wins over the body's OpenAI `user` field. */
type NamedBy = { value: string; field: 'header' | 'body' };

const FIELD_NAME = { header: 'X-Quota-User', body: 'The body field `user`' } as const;

function namedEndUser(c: Context, service: boolean, bodyUser: unknown): NamedBy | null {
  const header = c.req.header(END_USER_HEADER);
  if (header !== undefined) return { value: header, field: 'header' };
  // From a personal key the body's `user` is only OpenAI's abuse-monitoring field, never a payer.
  return service && typeof bodyUser === 'string' && bodyUser !== '' ? { value: bodyUser, field: 'body' } : null;
}

/** What the services a payer is found with must hold. */
export interface PayerServices {
  store: Store;
  clock: Clock;
  config: Pick<Config, 'users'>;
}

/**
 * Who pays for a request: the key's user, or — for a service key only — the end user it names in
 * `X-Quota-User` or the body's OpenAI `user` field (LobeChat puts its own user id there). A name
 * means the user linked to it as an external id, else the user with that id, else (with
 * `users.autoCreate`) a user created for it now. An ordinary key naming someone is refused:
 * otherwise anyone could spend a colleague's budget.
 */
export function payerOf(c: Context, services: PayerServices, identity: KeyIdentity, bodyUser: unknown): MaybePromise<RequestSubject> {
  const { key, user } = identity;
  const named = namedEndUser(c, key.service, bodyUser);
  // The key's own user, the usual case, is known without the store: a value, not a promise.
  if (named === null || (named.value === user.id && !key.service)) return { userId: user.id, projectId: user.projectId, keyId: key.id };
  return namedPayer(services, identity, named);
}

/** The end user a key names (see payerOf). */
async function namedPayer(services: PayerServices, { key }: KeyIdentity, named: NamedBy): Promise<RequestSubject> {
  if (!key.service) {
    throw new OpenAIError(403, 'permission_error', 'end_user_not_allowed', 'Only a service key may name the end user (X-Quota-User); this is a personal key.');
  }
  if (!subjectIdSchema.safeParse(named.value).success) throw invalidName(named);
  const endUser = (await services.store.findNamedUser(named.value)) ?? (await createOnFirstSight(services, named));
  return { userId: endUser.id, projectId: endUser.projectId, keyId: key.id };
}

/**
 * A user for a name seen for the first time, with no budgets of its own: the config's defaults for
 * every user (and the global and project ones) apply to it as to anyone. Two first requests at
 * once both try; the store creates one user and tells the other it exists, which then reads it.
 */
async function createOnFirstSight({ store, clock, config }: PayerServices, named: NamedBy): Promise<UserRef> {
  const { value } = named;
  if (!config.users.autoCreate) {
    throw new OpenAIError(
      400,
      'invalid_request_error',
      'unknown_user',
      `${FIELD_NAME[named.field]} names ${JSON.stringify(value)}, which is neither a lobe-quota user nor an external id linked to one, and users.autoCreate is off. ` +
        `Link it to a person (lobe-quota users link <user> ${value}), add it as a user (lobe-quota users add ${value}), or set "users": {"autoCreate": true} in the config.`,
      named.field === 'body' ? 'user' : null,
    );
  }
  const projectId = config.users.autoCreateProjectId;
  const created = await store.createUser({ id: value, name: value, projectId }, clock.now());
  if (created.ok) return created.value;
  const existing = created.reason === 'exists' ? await store.findNamedUser(value) : null;
  if (existing) return existing;
  throw new OpenAIError(
    500,
    'server_error',
    'user_not_created',
    `The user ${JSON.stringify(value)} could not be created: users.autoCreateProjectId names the project ${JSON.stringify(projectId)}, which does not exist. Ask your admin to create it (lobe-quota projects add ${projectId ?? ''}).`,
  );
}

/** A name no user could have; shown escaped and shortened (it may be anything a client sent). */
function invalidName({ value, field }: NamedBy): OpenAIError {
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  const rule = 'a user id is 1-128 characters of letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit';
  return field === 'header'
    ? new OpenAIError(400, 'invalid_request_error', 'invalid_header', `X-Quota-User: ${shown} (${value.length} characters) is not a valid user id: ${rule}.`)
    : new OpenAIError(400, 'invalid_request_error', 'invalid_user', `user: ${shown} (${value.length} characters) is not a valid user id: ${rule}.`, 'user');
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
