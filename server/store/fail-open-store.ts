import { formatScope, scopesOf } from '../quota/scope.js';
import { StoreUnavailableError } from './store-unavailable.js';
import type { BudgetReserveResult, Hold, KeyIdentity, ReserveRequest, ReserveResult, Store, UserRef } from './types.js';

type Metering = Pick<Store, 'findKeyByHash' | 'keyStates' | 'findNamedUser' | 'reserve' | 'extend' | 'settle' | 'renew' | 'release'>;

/** Keys seen recently enough to be let in by memory while the database is away. */
const REMEMBERED_KEYS = 10_000;

/**
 * `database.failOpen`: while the database is unreachable, requests are admitted without a budget
 * check instead of refused with 503. Their holds exist only here; a settle that cannot be written
 * is logged with its numbers (for reconciliation) and not recorded. A key is recognised from
 * memory if this instance saw it while the database was up (revocations apply again as soon as it
 * is back). Everything else, /quota and the admin API included, still fails as it would: only the
 * proxy's way in opens.
 */
export function failOpen(store: Store, log: (message: string) => void = (m) => console.warn(`[lobe-quota] ${m}`)): Store {
  const openHolds = new Map<string, Hold>();
  const unavailable = (error: unknown): boolean => error instanceof StoreUnavailableError;

  const knownKeys = new Map<string, KeyIdentity | null>();
  /** End users service keys named while the database was up (a LobeChat server names one per request). */
  const knownNames = new Map<string, UserRef | null>();

  // Without the database no limit is checked: a request the rate limits would refuse runs unmetered too.
  function reserve(request: ReserveRequest & { rates?: undefined }): Promise<BudgetReserveResult>;
  function reserve(request: ReserveRequest): Promise<ReserveResult>;
  async function reserve(request: ReserveRequest): Promise<ReserveResult> {
    try {
      return await store.reserve(request);
    } catch (error) {
      if (!unavailable(error)) throw error;
      const want = request.quote.output?.wantTokens ?? 0;
      const hold: Hold = {
        id: request.holdId,
        subject: request.subject,
        tokens: request.quote.tokens + want,
        micros: request.quote.micros,
        outputTokens: want,
        createdAt: request.now,
        expiresAt: request.now + request.ttlMs,
      };
      openHolds.set(hold.id, hold);
      log(`database unreachable: admitting ${hold.id} of ${scopesOf(request.subject).map(formatScope).join(', ')} unmetered (failOpen)`);
      return { ok: true, hold, budgets: [], outputRoom: Infinity };
    }
  }

  const rememberKey = (secretHash: string, identity: KeyIdentity | null) => {
    if (knownKeys.size >= REMEMBERED_KEYS) knownKeys.clear();
    knownKeys.set(secretHash, identity);
  };

  const metering: Metering = {
    async findKeyByHash(secretHash) {
      try {
        const identity = await store.findKeyByHash(secretHash);
        rememberKey(secretHash, identity);
        return identity;
      } catch (error) {
        if (!unavailable(error) || !knownKeys.has(secretHash)) throw error;
        return knownKeys.get(secretHash) ?? null;
      }
    },
    // GET /quota fails while the database is away, as before; a key it looked up is remembered.
    async keyStates(secretHash, now) {
      const found = await store.keyStates(secretHash, now);
      rememberKey(secretHash, found?.identity ?? null);
      return found;
    },
    async findNamedUser(name) {
      try {
        const user = await store.findNamedUser(name);
        if (knownNames.size >= REMEMBERED_KEYS) knownNames.clear();
        knownNames.set(name, user);
        return user;
      } catch (error) {
        if (!unavailable(error)) throw error;
        // A name not seen yet could be neither looked up nor created: its request runs unmetered like
        // any other now, and is logged under the name it gave.
        return knownNames.get(name) ?? { id: name, name, projectId: null, createdAt: 0 };
      }
    },
    reserve,
    async extend(holdId, amount, now, ttlMs, deliveredTokens) {
      const open = openHolds.get(holdId);
      if (open) {
        const grown = { ...open, tokens: open.tokens + amount.tokens, outputTokens: open.outputTokens + amount.tokens, expiresAt: now + ttlMs };
        openHolds.set(holdId, grown);
        return { ok: true, hold: grown };
      }
      try {
        return await store.extend(holdId, amount, now, ttlMs, deliveredTokens);
      } catch (error) {
        if (!unavailable(error)) throw error;
        // A stream admitted while the database was up goes on while it is down.
        return { ok: true, hold: { id: holdId, subject: { userId: '', projectId: null, keyId: '' }, tokens: amount.tokens, micros: amount.micros, outputTokens: amount.tokens, createdAt: now, expiresAt: now + ttlMs } };
      }
    },
    async settle(request) {
      openHolds.delete(request.holdId);
      try {
        return await store.settle(request);
      } catch (error) {
        if (!unavailable(error)) throw error;
        const { usage, subject } = request;
        log(
          `database unreachable: NOT recorded (failOpen): request ${request.holdId} of user ${subject.userId} key ${subject.keyId}, ` +
            `${usage.model}, ${usage.inputTokens} in + ${usage.outputTokens} out tokens, ${usage.costMicros} micro-dollars`,
        );
        return { entry: { ...usage, ...subject, overrunTokens: usage.overrunTokens ?? 0, id: 0, requestId: request.holdId, at: request.now }, duplicate: false };
      }
    },
    async renew(holdId, now, ttlMs) {
      if (openHolds.has(holdId)) return true;
      return store.renew(holdId, now, ttlMs).catch((error: unknown) => {
        if (unavailable(error)) return true;
        throw error;
      });
    },
    async release(holdId) {
      if (openHolds.delete(holdId)) return true;
      return store.release(holdId).catch((error: unknown) => {
        if (unavailable(error)) return false;
        throw error;
      });
    },
  };

  return new Proxy(store, {
    get(target, property) {
      if (typeof property === 'string' && property in metering) return metering[property as keyof Metering];
      // Admission goes through `reserve` above, which can let a request in while the database is away.
      if (property === 'reserveNow') return undefined;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
