import type { AlertEvent, AlertKind } from '../alerts/alert-event.js';
import type { SpikeConfig } from '../alerts/spikes.js';
import type { BudgetUsage, Quote } from '../quota/admission.js';
import type { Budget, FallbackRule, OnLimit } from '../quota/budgets.js';
import type { RateCheck, RateLimited, RateLimitOverride, RateLimitsByKind, RateLimitSetting, RateScope } from '../quota/rate-limits.js';
import type { RequestSubject, Route, Scope } from '../quota/scope.js';
import type { WindowSpec } from '../quota/window.js';
import type { ModelPrice } from '../proxy/pricing.js';

export interface Project {
  id: string;
  name: string;
  createdAt: number;
}

/** A user as a request needs it: who pays, and the project whose budgets also apply. */
export interface UserRef {
  id: string;
  name: string;
  projectId: string | null;
  createdAt: number;
}

export interface User extends UserRef {
  /**
   * Other systems' ids for this person (e.g. LobeChat's `user_2ab…`), sorted. A service key that
   * names one of them charges this user. Each is linked to at most one user.
   */
  externalIds: string[];
}

/** A key as listed: never its secret or hash. */
export interface ApiKey {
  id: string;
  userId: string;
  name: string;
  /** The first characters of the secret, so a person can tell keys apart. */
  prefix: string;
  service: boolean;
  /**
   * How the proxy answers this key's quota and rate refusals on chat endpoints: an HTTP error, or a
   * normal assistant answer that states the refusal (for chat front ends that hide error bodies).
   * null: the config's `proxy.refusalStyle`.
   */
  refusalStyle: RefusalStyle | null;
  createdAt: number;
  revokedAt: number | null;
}

export type RefusalStyle = 'error' | 'answer';

/** The identity behind a presented key. */
export interface KeyIdentity {
  key: ApiKey;
  user: UserRef;
}

/** An active key's identity and every budget its requests are bound by (GET /quota with a user key). */
export interface KeyStates {
  identity: KeyIdentity;
  states: BudgetState[];
}

/**
 * What linking or unlinking an external id did. `taken`: it is linked to another user (`userId`);
 * `not-linked`: (unlink) it is linked to nobody. `changed` is false only for a link the user had.
 */
export type ExternalIdChange =
  | { ok: true; user: User; changed: boolean }
  | { ok: false; reason: 'missing-user' }
  | { ok: false; reason: 'taken'; userId: string }
  | { ok: false; reason: 'not-linked' };

/** What renaming or moving a user did: no such user, or a `projectId` that names no project. */
export type UserChange = { ok: true; user: User } | { ok: false; reason: 'missing-user' } | { ok: false; reason: 'missing-reference'; field: 'projectId' };

export interface BudgetInput {
  scope: Scope;
  window: WindowSpec;
  limitTokens: number | null;
  limitMicros: number | null;
  thresholds: number[] | null;
  onLimit: OnLimit;
  downgradeTo: string | null;
  /** Model ids or globs it alone counts and limits, sorted and distinct (absent or null: every model). */
  models?: string[] | null;
  /** Its fallback rules, in increasing order of `at` (absent: none). */
  fallback?: FallbackRule[];
}

/** Who decided a grant (or an increase request): an admin, a signed link, or the auto-approve policy. */
export type DecidedBy = 'admin' | 'link' | 'policy';

/**
 * Extra room on one budget for a while: tokens and micro-dollars added to its limits from
 * `startsAt` until `endsAt` (the end of the window it was granted in, or a date). A grant never
 * applies outside that span, so it ends with its window and never leaks into the next.
 */
export interface Grant {
  id: string;
  /** The budget it raises (Budget.key: its scope, period and models). */
  budgetKey: string;
  scope: Scope;
  tokens: number;
  micros: number;
  startsAt: number;
  endsAt: number;
  decidedBy: DecidedBy;
  /** The increase request it answers, if any. */
  requestId: string | null;
  reason: string | null;
  createdAt: number;
}

export type GrantInput = Omit<Grant, 'id' | 'createdAt'>;

export type QuotaRequestState = 'open' | 'approved' | 'denied';

/**
 * A user's request for more room on one budget that binds their requests. At most one is open per
 * user and budget; a decision is final (`decidedBy`, `decidedAt`), and an approval's grant is made
 * in the same transaction as the decision, so a request is granted at most once.
 */
export interface QuotaRequest {
  id: string;
  userId: string;
  /** The key it was asked with. */
  keyId: string;
  /** The budget's scope. */
  scope: Scope;
  budgetKey: string;
  /** What was asked, in the budget's unit (one of the two is 0 unless the budget has both limits). */
  amountTokens: number;
  amountMicros: number;
  reason: string | null;
  state: QuotaRequestState;
  createdAt: number;
  decidedAt: number | null;
  decidedBy: DecidedBy | null;
  /** What an approval granted (an approver may change the amount); null until approved. */
  grantedTokens: number | null;
  grantedMicros: number | null;
  grantId: string | null;
  /** When the requester was told the decision (the next check_quota); null until then. */
  seenAt: number | null;
}

export type QuotaRequestInput = Pick<QuotaRequest, 'userId' | 'keyId' | 'scope' | 'budgetKey' | 'amountTokens' | 'amountMicros' | 'reason'>;

/** How a request is decided: an approval names the grant it makes (its amount and span). */
export type RequestDecision =
  | { state: 'approved'; decidedBy: DecidedBy; grant: Pick<Grant, 'tokens' | 'micros' | 'startsAt' | 'endsAt'> }
  | { state: 'denied'; decidedBy: DecidedBy };

export type Decided =
  | { ok: true; request: QuotaRequest; grant: Grant | null }
  /** `not-open`: decided before (by anyone, possibly a moment ago); `request` is as it stands. */
  | { ok: false; reason: 'not-found' }
  | { ok: false; reason: 'not-open'; request: QuotaRequest };

/**
 * An alert a request step records in its own transaction, built from the stored request (so its id
 * and links can be in it); null records none.
 */
export type RequestNotice = (request: QuotaRequest, grant: Grant | null) => AlertEvent | null;

/** A budget with its counters at one instant. */
export interface BudgetState {
  /** With the grants active at that instant included in its limits (see `grants`). */
  budget: Budget;
  usage: BudgetUsage;
  /** Epoch ms when the usage next goes down; null when it never does (or nothing is used yet). */
  resetsAt: number | null;
  /** The grants its limits include at that instant (absent: none). */
  grants?: Grant[];
}

export interface ReserveRequest {
  /** Unique per request; it becomes the ledger entry's request id, which makes settle idempotent. */
  holdId: string;
  subject: RequestSubject;
  quote: Quote;
  now: number;
  ttlMs: number;
  /**
   * The model and upstream the request goes to: budgets of other models, and of other upstreams,
   * do not apply. Absent: only the budgets that name no models and no upstream.
   */
  route?: Route;
  /**
   * Checks and counts the rate limits alone, against no budget (a response-cache hit that costs
   * nothing: no budget changes, but it is a request like any other). Its hold sets nothing aside.
   */
  ratesOnly?: boolean;
  /**
   * What to charge if the process dies before the request settles: kept with the hold, so that the
   * hold of a dead process is settled at its last count (`recovered`) instead of vanishing. A hold
   * without one is released when its process is found dead.
   */
  pending?: PendingCharge;
  /**
   * Request and concurrency limits, checked in the same atomic step as the budgets (absent: none).
   * Admitted by every limit and every budget, the request is counted in every window it is limited
   * in; refused by any, it is counted nowhere.
   */
  rates?: RateRequest;
}

export interface RateRequest {
  /**
   * The config's `rateLimits` per kind of scope. The store applies the admin's overrides of the
   * request's own key, user and project (putRateLimit) as it checks them, under the same lock.
   */
  limits: RateLimitsByKind;
  /** What `tokensPerMinute` counts for this request: its prompt plus the output it asks for. */
  tokens: number;
  /**
   * The same client request admitted again (another upstream after the first failed): only
   * `maxConcurrent` is checked, and no window counts it a second time.
   */
  alreadyCounted?: boolean;
}

/** Micro-dollars per 1M tokens of each token class: a model's price as proxy/pricing.ts keeps it. */
export type UnitPrices = ModelPrice;

/** A live request's charge so far, short of its output (which the hold's `deliveredTokens` counts). */
export interface PendingCharge {
  model: string;
  /** The upstream that serves the request (absent: none known), whose budgets it is settled against. */
  upstream?: string | null;
  inputTokens: number;
  /** null for an unpriced model, which costs nothing. */
  price: UnitPrices | null;
  sessionId: string | null;
  tags: Record<string, string>;
}

/** The hold of a request whose process died: what it would have been charged when it was last counted. */
export interface OrphanedHold {
  hold: Hold;
  pending: PendingCharge;
  /** Output tokens counted when the hold last grew (0 for a request that never grew it). */
  deliveredTokens: number;
  /** When the hold last grew (or was taken): the request ran at least until then. */
  updatedAt: number;
}

/**
 * `rates` (with a request's `rates` only): each rate-limited scope's limits in force and its counts
 * before this request, for the x-ratelimit-* headers.
 */
export type BudgetReserveResult =
  /** `outputRoom`: output tokens the tightest budget had room for, before the allowance was clamped. */
  | { ok: true; hold: Hold; budgets: BudgetState[]; outputRoom: number; rates?: RateCheck[] }
  | { ok: false; blocking: BudgetState; budgets: BudgetState[]; rates?: RateCheck[] };

/** Refused by a request or concurrency limit (checked before the budgets): nothing was counted or held. */
export interface RateLimitedResult {
  ok: false;
  rateLimited: RateLimited;
  rates: RateCheck[];
  budgets: BudgetState[];
}

export type ReserveResult = BudgetReserveResult | RateLimitedResult;

export interface Hold {
  id: string;
  subject: RequestSubject;
  tokens: number;
  micros: number;
  /** The output allowance granted (the request's clamped max_tokens). */
  outputTokens: number;
  createdAt: number;
  expiresAt: number;
  /** Where the request goes (see ReserveRequest.route): a lease extension is checked against the same budgets. */
  route?: Route;
}

export type ExtendResult =
  | { ok: true; hold: Hold }
  | { ok: false; reason: 'unknown-hold' }
  | { ok: false; reason: 'exceeded'; blocking: BudgetState };

/**
 * How a request ended: answered; cut at the budget; left by its client; broken off by its upstream
 * after output was delivered (that output is charged); or interrupted by the death of the process
 * that served it (settled later at its last count, with source `recovered`); or refused by a budget
 * or rate limit and answered as a message (`refusalStyle: "answer"`), charged nothing. Refusals
 * answered as errors leave no entry.
 */
export type Outcome = 'ok' | 'cut_off' | 'client_abort' | 'upstream_error' | 'interrupted' | 'refused';
/**
 * Whose numbers: the upstream's usage, our own count, the last count of a dead process's hold, or
 * an answer served from the response cache (charged its configured fraction of the first answer).
 */
export type UsageSource = 'upstream' | 'estimated' | 'recovered' | 'cache';

export interface Usage {
  model: string;
  /**
   * The upstream (provider account) that served it, whose budgets count it. Optional on input
   * (absent: none); entries read from a store always have it (null: none).
   */
  upstream?: string | null;
  /** The whole prompt: cache reads and cache writes are parts of it. */
  inputTokens: number;
  /** Reasoning (thinking) included. */
  outputTokens: number;
  /** Prompt tokens read from a cache. */
  cachedTokens: number;
  reasoningTokens: number;
  /**
   * Prompt tokens written to a cache (Anthropic's `cache_creation_input_tokens`), priced apart.
   * Optional on input (absent: 0); entries read from a store always have it.
   */
  cacheWriteTokens?: number;
  /** The part of `cacheWriteTokens` written for an hour rather than 5 minutes. Optional as `cacheWriteTokens`. */
  cacheWrite1hTokens?: number;
  costMicros: number;
  source: UsageSource;
  outcome: Outcome;
  latencyMs: number;
  sessionId: string | null;
  tags: Record<string, string>;
  /**
   * Output tokens charged beyond what the request was allowed (its hold's output allowance): an
   * upstream that ignored the output limit, or reported more than it was let produce. 0 when within.
   * A settle with an overrun records an `overrun` alert. Optional on input; always set on entries.
   */
  overrunTokens?: number;
  /**
   * What a response-cache hit did not cost: the first answer's tokens and cost minus what the hit
   * was charged (the entry's own tokens and cost). 0 for every other entry. Optional on input
   * (absent: 0); entries read from a store always have them.
   */
  savedTokens?: number;
  savedMicros?: number;
}

export interface SettleRequest {
  holdId: string;
  subject: RequestSubject;
  usage: Usage;
  now: number;
}

/** One settled request. Never prompt or reply text. */
export interface LedgerEntry extends Usage, RequestSubject {
  id: number;
  requestId: string;
  at: number;
  /** 0 when the upstream kept to the request's allowance. */
  overrunTokens: number;
}

export interface SettleResult {
  entry: LedgerEntry;
  /** True when this request was settled before: nothing changed. */
  duplicate: boolean;
}

export type UsageGroupBy = 'user' | 'project' | 'key' | 'model' | 'day';

export interface UsageQuery {
  /** One dimension, or two (in that order) for a cross-tabulation such as user × model. */
  groupBy: UsageGroupBy | readonly UsageGroupBy[];
  from: number;
  to: number;
  /** Time zone of `day` groups. */
  timeZone: string;
  /** Only this user's requests (a user reading their own history); absent: everyone's. */
  userId?: string;
}

export interface UsageRow {
  /** The value of the first dimension; kept so single-dimension callers read one field. */
  group: string;
  /** The value of every dimension, in the order of `groupBy`. */
  groups: string[];
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Prompt tokens written to a cache (part of `inputTokens`). */
  cacheWriteTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  costMicros: number;
  /** Answers served from the response cache (entries with source `cache`). */
  cacheHits: number;
  /** What those hits did not cost (see Usage.savedTokens). */
  savedTokens: number;
  savedMicros: number;
}

export interface Delivery {
  channel: string;
  state: 'pending' | 'delivered';
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  deliveredAt: number | null;
}

export interface AlertRecord {
  alert: AlertEvent;
  windowStart: number;
  deliveries: Delivery[];
}

export interface AlertQuery {
  scope?: string;
  kind?: AlertKind;
  /** Threshold percent (0 for projections and anomalies). */
  threshold?: number;
  windowStart?: number;
  state?: 'pending' | 'delivered';
  limit: number;
}

/** An alert waiting to go to one channel. */
export interface DueDelivery {
  alert: AlertEvent;
  channel: string;
  attempts: number;
}

export type Created<T> =
  | { ok: true; value: T }
  /** `value`: the one value refused, when the field holds several (an external id of `externalIds`). */
  | { ok: false; reason: 'exists' | 'missing-reference'; field: string; value?: string };

/**
 * Everything the service keeps. Each method is one atomic step; implementations differ in how
 * (one synchronous SQLite transaction; row locks on PostgreSQL), not in what they guarantee.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Throws when the store cannot answer right now (for the health check). */
  ping(): Promise<void>;

  createProject(project: { id: string; name: string }, now: number): Promise<Created<Project>>;
  listProjects(): Promise<Project[]>;
  getProject(id: string): Promise<Project | null>;
  /** null when there is no such project. */
  renameProject(id: string, name: string): Promise<Project | null>;
  /** Refused as `exists` on `id`, or on `externalIds` (with the `value` linked to someone else already). */
  createUser(user: { id: string; name: string; projectId: string | null; externalIds?: readonly string[] }, now: number): Promise<Created<User>>;
  listUsers(): Promise<User[]>;
  getUser(id: string): Promise<User | null>;
  /**
   * Renames a user and/or moves them to another project (null: none). Requests admitted from now on
   * are charged to the new project; the ledger keeps the project each past request was charged to.
   */
  updateUser(id: string, change: { name?: string; projectId?: string | null }): Promise<UserChange>;
  /** Links an external id to a user; linking it again to the same user changes nothing. */
  linkExternalId(userId: string, externalId: string, now: number): Promise<ExternalIdChange>;
  /** Only the user's own link: an id linked to another user is `taken`, one linked to nobody `not-linked`. */
  unlinkExternalId(userId: string, externalId: string): Promise<ExternalIdChange>;
  findUserByExternalId(externalId: string): Promise<User | null>;
  /**
   * The user a service key names with `name`: the one linked to the external id `name`, else the one
   * whose id is `name`. One read (it is on the proxy's path for every request a service key makes).
   */
  findNamedUser(name: string): Promise<UserRef | null>;

  /** Stores only the secret's hash. `refusalStyle` defaults to null (the config's). */
  createKey(
    key: { id: string; userId: string; name: string; service: boolean; refusalStyle?: RefusalStyle | null; secretHash: string; prefix: string },
    now: number,
  ): Promise<Created<ApiKey>>;
  listKeys(userId?: string): Promise<ApiKey[]>;
  getKey(id: string): Promise<ApiKey | null>;
  /** The active (not revoked) key with this hash, with its user. */
  findKeyByHash(secretHash: string): Promise<KeyIdentity | null>;
  revokeKey(id: string, now: number): Promise<ApiKey | null>;
  /** null: the config's `proxy.refusalStyle`. Returns null when there is no such key. */
  setKeyRefusalStyle(id: string, refusalStyle: RefusalStyle | null): Promise<ApiKey | null>;

  /**
   * Creates or replaces the budget of the same scope and period; its counters are rebuilt. Returns
   * the budget replaced (null when it is new), read in the same transaction as the write.
   */
  putBudget(input: BudgetInput, now: number): Promise<{ budget: Budget; replaced: Budget | null }>;
  listBudgets(): Promise<Budget[]>;
  deleteBudget(id: string): Promise<Budget | null>;

  /**
   * Sets a subject's rate limits over the config's for its kind (a field absent keeps the config's,
   * null lifts it), replacing the subject's earlier ones; returns those (null when there were none).
   */
  putRateLimit(scope: RateScope, limits: RateLimitOverride, now: number): Promise<{ setting: RateLimitSetting; replaced: RateLimitSetting | null }>;
  /** Every subject's rate limits, by scope. */
  listRateLimits(): Promise<RateLimitSetting[]>;
  /** Returns the limits removed, null when the subject had none. */
  deleteRateLimit(scope: RateScope): Promise<RateLimitSetting | null>;

  /** Every budget applying to the given scopes, with its counters at `now`. */
  budgetStates(scopes: Scope[], now: number): Promise<BudgetState[]>;
  /**
   * findKeyByHash and the budgetStates of the key's scopes (scopesOfKey) together: null when no
   * active key has this hash. PostgreSQL reads both in one statement when it has seen the key before.
   */
  keyStates(secretHash: string, now: number): Promise<KeyStates | null>;

  /** Without `rates` only a budget can refuse (hence the first signature). */
  reserve(request: ReserveRequest & { rates?: undefined }): Promise<BudgetReserveResult>;
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  /**
   * `reserve`, answered synchronously: only a store whose admission runs in this process's memory
   * has it (SQLite; not PostgreSQL, whose admission is a round trip). Same decisions, same hold,
   * same errors (thrown rather than rejected). The proxy uses it when present, so that a request's
   * admission costs no promise hops.
   */
  reserveNow?(request: ReserveRequest & { rates?: undefined }): BudgetReserveResult;
  reserveNow?(request: ReserveRequest): ReserveResult;
  /** Grows a hold; `deliveredTokens` is the request's output counted so far, kept for recovery. */
  extend(holdId: string, amount: { tokens: number; micros: number }, now: number, ttlMs: number, deliveredTokens?: number): Promise<ExtendResult>;
  settle(request: SettleRequest): Promise<SettleResult>;
  /** Keeps a live request's hold from expiring. Returns false when the hold is gone. */
  renew(holdId: string, now: number, ttlMs: number): Promise<boolean>;
  /** Returns false when the hold was already gone. */
  release(holdId: string): Promise<boolean>;
  /** Releases holds whose request stopped renewing them. Returns how many. */
  expireHolds(now: number): Promise<number>;
  listHolds(): Promise<Hold[]>;
  /**
   * Holds whose process died with their requests still running: on SQLite those an earlier process
   * left in the file, on PostgreSQL those of instances whose heartbeat stopped. Each is handed to one
   * caller only, which settles it (source `recovered`) or releases it.
   */
  orphanedHolds(now: number): Promise<OrphanedHold[]>;

  usageReport(query: UsageQuery): Promise<UsageRow[]>;
  /**
   * Retention: rolls ledger entries older than `before` up into per-quarter-hour totals (per user,
   * project, key and model) and deletes them; reports and budgets read both, so no result changes.
   * Returns how many entries were rolled up.
   */
  rollUpLedger(before: number): Promise<number>;
  /** Spike detection: records `anomaly` alerts (once per subject and hour); returns the new ones. */
  recordSpikes(now: number, config: SpikeConfig): Promise<AlertEvent[]>;
  /** The newest ledger entries first; with `userId`, that user's only. */
  recentEntries(limit: number, userId?: string): Promise<LedgerEntry[]>;

  /** The outbox: deliveries due at `now`, oldest first. */
  dueDeliveries(now: number, limit: number): Promise<DueDelivery[]>;
  markDelivered(alertId: string, channel: string, now: number): Promise<void>;
  markDeliveryFailed(alertId: string, channel: string, error: string, nextAttemptAt: number): Promise<void>;
  /**
   * "Retry now": the alert's pending deliveries are due at `now` instead of after their backoff, and
   * the sender is told. Returns how many were pending; null when there is no such alert.
   */
  retryDeliveries(alertId: string, now: number): Promise<number | null>;
  /** Alerts, newest first, with their deliveries. */
  listAlerts(query: AlertQuery): Promise<AlertRecord[]>;

  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  /** Stores `value` unless `key` has one already; returns the value stored (first writer wins, across instances). */
  claimMeta(key: string, value: string): Promise<string>;

  /**
   * Records a grant. From the next admission on (on every instance), the budget's limits include it
   * while it is active; `budgetStates` lists it with the budget.
   */
  createGrant(input: GrantInput, now: number): Promise<Grant>;
  /** Grants, newest first: of one scope (its text, `user:alice`), and/or those active at an instant. */
  listGrants(query: { scope?: string; activeAt?: number }): Promise<Grant[]>;

  /**
   * Records an open request, and `notice`'s alert in the same transaction (queued for the channels
   * that accept it). Refused as `exists` on `budgetKey` while the user has an open one on that budget.
   */
  createQuotaRequest(input: QuotaRequestInput, now: number, notice?: RequestNotice): Promise<Created<QuotaRequest>>;
  getQuotaRequest(id: string): Promise<QuotaRequest | null>;
  /** Newest first. */
  listQuotaRequests(query: { state?: QuotaRequestState; userId?: string }): Promise<QuotaRequest[]>;
  /**
   * Decides an open request: the state change, an approval's grant and `notice`'s alert in one
   * transaction, so of two deciding at once one wins and the other is told `not-open`.
   */
  decideQuotaRequest(id: string, decision: RequestDecision, now: number, notice?: RequestNotice): Promise<Decided>;
  /** The user's decided requests not yet told to them, oldest first. */
  unseenDecisions(userId: string): Promise<QuotaRequest[]>;
  /**
   * Marks decided requests as told to their requester; returns the ids this call marked, so that of
   * two callers at once only one tells each decision.
   */
  markRequestSeen(ids: readonly string[], now: number): Promise<string[]>;
  close(): Promise<void>;
}
