import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { DateTime } from 'luxon';
import type { DefaultBudget } from '../../config/schema.js';
import { admit, type BudgetUsage } from '../../quota/admission.js';
import { budgetKey, resolveBudgets, type Budget } from '../../quota/budgets.js';
import { formatScope, scopesOf, type RequestSubject, type Scope } from '../../quota/scope.js';
import {
  bucketAt,
  bucketRetiresAt,
  bucketsAt,
  nextResetAt,
  windowPeriod,
  type Bucket,
  type WindowSpec,
} from '../../quota/window.js';
import type {
  ApiKey,
  BudgetInput,
  BudgetState,
  Created,
  ExtendResult,
  Hold,
  KeyIdentity,
  LedgerEntry,
  Project,
  ReserveRequest,
  ReserveResult,
  SettleRequest,
  SettleResult,
  Store,
  UsageQuery,
  UsageRow,
  User,
} from '../types.js';
import { migrate } from './migrations.js';

export interface SqliteStoreOptions {
  /** Database file, or ':memory:'. */
  file: string;
  defaultBudgets: readonly DefaultBudget[];
  defaultThresholds: number[];
}

interface BudgetRow {
  id: string;
  scope: string;
  window: string;
  limit_tokens: number | null;
  limit_micros: number | null;
  thresholds: string | null;
  on_limit: Budget['onLimit'];
  downgrade_to: string | null;
}

interface HoldRow {
  id: string;
  user_id: string;
  project_id: string | null;
  key_id: string;
  tokens: number;
  micros: number;
  output_tokens: number;
  created_at: number;
  expires_at: number;
}

interface LedgerRow {
  id: number;
  request_id: string;
  at: number;
  user_id: string;
  project_id: string | null;
  key_id: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost_micros: number;
  source: LedgerEntry['source'];
  outcome: LedgerEntry['outcome'];
  latency_ms: number;
  session_id: string | null;
  tags: string | null;
}

interface KeyRow {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  service: number;
  created_at: number;
  revoked_at: number | null;
}

interface Sums {
  tokens: number;
  micros: number;
}

/** The ledger column a scope's usage is found under (global: every row). */
const SCOPE_COLUMN = { user: 'user_id', project: 'project_id', key: 'key_id' } as const;

const parseScopeText = (text: string): Scope => {
  if (text === 'global') return { kind: 'global' };
  const colon = text.indexOf(':');
  return { kind: text.slice(0, colon) as 'user' | 'project' | 'key', id: text.slice(colon + 1) };
};

const toProject = (r: { id: string; name: string; created_at: number }): Project => ({ id: r.id, name: r.name, createdAt: r.created_at });
const toUser = (r: { id: string; name: string; project_id: string | null; created_at: number }): User => ({
  id: r.id,
  name: r.name,
  projectId: r.project_id,
  createdAt: r.created_at,
});
const toKey = (r: KeyRow): ApiKey => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  prefix: r.prefix,
  service: r.service === 1,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});
const toHold = (r: HoldRow): Hold => ({
  id: r.id,
  subject: { userId: r.user_id, projectId: r.project_id, keyId: r.key_id },
  tokens: r.tokens,
  micros: r.micros,
  outputTokens: r.output_tokens,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});
const toEntry = (r: LedgerRow): LedgerEntry => ({
  id: r.id,
  requestId: r.request_id,
  at: r.at,
  userId: r.user_id,
  projectId: r.project_id,
  keyId: r.key_id,
  model: r.model,
  inputTokens: r.input_tokens,
  outputTokens: r.output_tokens,
  cachedTokens: r.cached_tokens,
  reasoningTokens: r.reasoning_tokens,
  costMicros: r.cost_micros,
  source: r.source,
  outcome: r.outcome,
  latencyMs: r.latency_ms,
  sessionId: r.session_id,
  tags: r.tags === null ? {} : (JSON.parse(r.tags) as Record<string, string>),
});

/**
 * The embedded store. Every method is one synchronous better-sqlite3 transaction, which is what
 * makes check-and-reserve atomic: nothing else runs in this process between the check and the write,
 * and one process owns the file. That ownership also lets stored budgets be cached in memory.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Db;
  private readonly defaults: readonly DefaultBudget[];
  private readonly defaultThresholds: number[];
  private storedBudgets: Budget[] | null = null;
  private readonly seedStatements = new Map<string, Statement<unknown[], Sums>>();
  private readonly s;

  private constructor(db: Db, options: SqliteStoreOptions) {
    this.db = db;
    this.defaults = options.defaultBudgets;
    this.defaultThresholds = options.defaultThresholds;
    this.s = {
      insertProject: db.prepare('INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)'),
      getProject: db.prepare<[string], { id: string; name: string; created_at: number }>('SELECT * FROM projects WHERE id = ?'),
      listProjects: db.prepare<[], { id: string; name: string; created_at: number }>('SELECT * FROM projects ORDER BY id'),
      insertUser: db.prepare('INSERT INTO users (id, name, project_id, created_at) VALUES (?, ?, ?, ?)'),
      getUser: db.prepare<[string], { id: string; name: string; project_id: string | null; created_at: number }>('SELECT * FROM users WHERE id = ?'),
      listUsers: db.prepare<[], { id: string; name: string; project_id: string | null; created_at: number }>('SELECT * FROM users ORDER BY id'),
      insertKey: db.prepare(
        'INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, service, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      getKey: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE id = ?'),
      listKeys: db.prepare<[], KeyRow>('SELECT * FROM api_keys ORDER BY created_at, id'),
      listUserKeys: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id'),
      findKey: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      listBudgets: db.prepare<[], BudgetRow>('SELECT * FROM budgets ORDER BY scope, period'),
      getBudgetByPeriod: db.prepare<[string, string], { id: string }>('SELECT id FROM budgets WHERE scope = ? AND period = ?'),
      getBudget: db.prepare<[string], BudgetRow>('SELECT * FROM budgets WHERE id = ?'),
      upsertBudget: db.prepare(
        `INSERT INTO budgets (id, scope, period, window, limit_tokens, limit_micros, thresholds, on_limit, downgrade_to, created_at, updated_at)
         VALUES (@id, @scope, @period, @window, @limitTokens, @limitMicros, @thresholds, @onLimit, @downgradeTo, @now, @now)
         ON CONFLICT (scope, period) DO UPDATE SET window = excluded.window, limit_tokens = excluded.limit_tokens,
           limit_micros = excluded.limit_micros, thresholds = excluded.thresholds, on_limit = excluded.on_limit,
           downgrade_to = excluded.downgrade_to, updated_at = excluded.updated_at`,
      ),
      deleteBudget: db.prepare('DELETE FROM budgets WHERE id = ?'),
      deleteCounters: db.prepare('DELETE FROM usage_counters WHERE budget_key = ?'),
      deleteUnstoredCounters: db.prepare(
        `DELETE FROM usage_counters WHERE budget_key NOT IN (SELECT scope || '|' || period FROM budgets)`,
      ),
      counter: db.prepare<[string, number], Sums>('SELECT tokens, micros FROM usage_counters WHERE budget_key = ? AND bucket_start = ?'),
      counterRange: db.prepare<[string, number, number], Sums & { bucket_start: number }>(
        'SELECT bucket_start, tokens, micros FROM usage_counters WHERE budget_key = ? AND bucket_start BETWEEN ? AND ?',
      ),
      insertCounter: db.prepare(
        'INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      addToCounter: db.prepare('UPDATE usage_counters SET tokens = tokens + ?, micros = micros + ? WHERE budget_key = ? AND bucket_start = ?'),
      retireCounters: db.prepare('DELETE FROM usage_counters WHERE retires_at <= ?'),
      reserved: db.prepare<[string], Sums>(
        'SELECT COALESCE(SUM(tokens), 0) AS tokens, COALESCE(SUM(micros), 0) AS micros FROM hold_budgets WHERE budget_key = ?',
      ),
      insertHold: db.prepare(
        'INSERT INTO holds (id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      getHold: db.prepare<[string], HoldRow>('SELECT * FROM holds WHERE id = ?'),
      listHolds: db.prepare<[], HoldRow>('SELECT * FROM holds ORDER BY created_at, id'),
      extendHold: db.prepare(
        'UPDATE holds SET tokens = tokens + ?, micros = micros + ?, output_tokens = output_tokens + ?, expires_at = ? WHERE id = ?',
      ),
      addHoldBudget: db.prepare(
        `INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros) VALUES (?, ?, ?, ?)
         ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = tokens + excluded.tokens, micros = micros + excluded.micros`,
      ),
      deleteHold: db.prepare('DELETE FROM holds WHERE id = ?'),
      expireHolds: db.prepare('DELETE FROM holds WHERE expires_at <= ?'),
      clearHolds: db.prepare('DELETE FROM holds'),
      entryByRequest: db.prepare<[string], LedgerRow>('SELECT * FROM ledger WHERE request_id = ?'),
      insertEntry: db.prepare<unknown[], LedgerRow>(
        `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
           reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      ),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /**
   * Opens (creating if needed) and migrates the database. Holds left by a previous process are
   * cleared: their requests died with it. Counters of config defaults are dropped when the defaults
   * changed, since a default that disappears and comes back must not find stale counts.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    if (options.file !== ':memory:') mkdirSync(path.dirname(options.file), { recursive: true });
    const db = new Database(options.file);
    db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a committed transaction survives the process being killed at any instant.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    const store = new SqliteStore(db, options);
    store.db.transaction(() => {
      store.s.clearHolds.run();
      const fingerprint = JSON.stringify(options.defaultBudgets);
      if (store.s.getMeta.get('default_budgets')?.value !== fingerprint) {
        store.s.deleteUnstoredCounters.run();
        store.s.setMeta.run('default_budgets', fingerprint);
      }
    })();
    return store;
  }

  /* ── directory ─────────────────────────────────────────────────────────── */

  async createProject(project: { id: string; name: string }, now: number): Promise<Created<Project>> {
    if (this.s.getProject.get(project.id)) return { ok: false, reason: 'exists', field: 'id' };
    this.s.insertProject.run(project.id, project.name, now);
    return { ok: true, value: { ...project, createdAt: now } };
  }

  async listProjects(): Promise<Project[]> {
    return this.s.listProjects.all().map(toProject);
  }

  async getProject(id: string): Promise<Project | null> {
    const row = this.s.getProject.get(id);
    return row ? toProject(row) : null;
  }

  async createUser(user: { id: string; name: string; projectId: string | null }, now: number): Promise<Created<User>> {
    return this.db.transaction((): Created<User> => {
      if (this.s.getUser.get(user.id)) return { ok: false, reason: 'exists', field: 'id' };
      if (user.projectId !== null && !this.s.getProject.get(user.projectId)) {
        return { ok: false, reason: 'missing-reference', field: 'projectId' };
      }
      this.s.insertUser.run(user.id, user.name, user.projectId, now);
      return { ok: true, value: { ...user, createdAt: now } };
    })();
  }

  async listUsers(): Promise<User[]> {
    return this.s.listUsers.all().map(toUser);
  }

  async getUser(id: string): Promise<User | null> {
    const row = this.s.getUser.get(id);
    return row ? toUser(row) : null;
  }

  async createKey(
    key: { id: string; userId: string; name: string; service: boolean; secretHash: string; prefix: string },
    now: number,
  ): Promise<Created<ApiKey>> {
    return this.db.transaction((): Created<ApiKey> => {
      if (!this.s.getUser.get(key.userId)) return { ok: false, reason: 'missing-reference', field: 'userId' };
      this.s.insertKey.run(key.id, key.userId, key.name, key.prefix, key.secretHash, key.service ? 1 : 0, now);
      return {
        ok: true,
        value: { id: key.id, userId: key.userId, name: key.name, prefix: key.prefix, service: key.service, createdAt: now, revokedAt: null },
      };
    })();
  }

  async listKeys(userId?: string): Promise<ApiKey[]> {
    return (userId === undefined ? this.s.listKeys.all() : this.s.listUserKeys.all(userId)).map(toKey);
  }

  async getKey(id: string): Promise<ApiKey | null> {
    const row = this.s.getKey.get(id);
    return row ? toKey(row) : null;
  }

  async findKeyByHash(secretHash: string): Promise<KeyIdentity | null> {
    const row = this.s.findKey.get(secretHash);
    if (!row) return null;
    const user = this.s.getUser.get(row.user_id);
    return user ? { key: toKey(row), user: toUser(user) } : null;
  }

  async revokeKey(id: string, now: number): Promise<ApiKey | null> {
    this.s.revokeKey.run(now, id);
    return this.getKey(id);
  }

  /* ── budgets ───────────────────────────────────────────────────────────── */

  async putBudget(input: BudgetInput, now: number): Promise<{ budget: Budget; created: boolean }> {
    const scope = formatScope(input.scope);
    const period = windowPeriod(input.window);
    const result = this.db.transaction(() => {
      const existing = this.s.getBudgetByPeriod.get(scope, period);
      const id = existing?.id ?? `bud_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
      this.s.upsertBudget.run({
        id,
        scope,
        period,
        window: JSON.stringify(input.window),
        limitTokens: input.limitTokens,
        limitMicros: input.limitMicros,
        thresholds: input.thresholds === null ? null : JSON.stringify(input.thresholds),
        onLimit: input.onLimit,
        downgradeTo: input.downgradeTo,
        now,
      });
      // The window may have moved (another time zone): counters are re-seeded from the ledger.
      this.s.deleteCounters.run(`${scope}|${period}`);
      return { row: this.s.getBudget.get(id) as BudgetRow, created: existing === undefined };
    })();
    this.storedBudgets = null;
    return { budget: this.toBudget(result.row), created: result.created };
  }

  async listBudgets(): Promise<Budget[]> {
    return [...this.stored()];
  }

  async deleteBudget(id: string): Promise<Budget | null> {
    const deleted = this.db.transaction(() => {
      const row = this.s.getBudget.get(id);
      if (!row) return null;
      const budget = this.toBudget(row);
      this.s.deleteBudget.run(id);
      this.s.deleteCounters.run(budget.key);
      return budget;
    })();
    this.storedBudgets = null;
    return deleted;
  }

  private toBudget(row: BudgetRow): Budget {
    const scope = parseScopeText(row.scope);
    const window = JSON.parse(row.window) as WindowSpec;
    return {
      id: row.id,
      source: 'admin',
      scope,
      window,
      limitTokens: row.limit_tokens,
      limitMicros: row.limit_micros,
      thresholds: row.thresholds === null ? this.defaultThresholds : (JSON.parse(row.thresholds) as number[]),
      onLimit: row.on_limit,
      downgradeTo: row.downgrade_to,
      key: budgetKey(scope, window),
    };
  }

  private stored(): Budget[] {
    this.storedBudgets ??= this.s.listBudgets.all().map((row) => this.toBudget(row));
    return this.storedBudgets;
  }

  private budgetsFor(scopes: readonly Scope[]): Budget[] {
    return resolveBudgets(scopes, this.stored(), this.defaults, this.defaultThresholds);
  }

  /* ── counters ──────────────────────────────────────────────────────────── */

  private seedStatement(scope: Scope): Statement<unknown[], Sums> {
    const column = scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind];
    const cacheKey = column ?? 'global';
    let statement = this.seedStatements.get(cacheKey);
    if (!statement) {
      statement = this.db.prepare<unknown[], Sums>(
        `SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS tokens, COALESCE(SUM(cost_micros), 0) AS micros
         FROM ledger WHERE ${column === null ? '' : `${column} = ? AND `}at >= ? AND at < ?`,
      );
      this.seedStatements.set(cacheKey, statement);
    }
    return statement;
  }

  /** Creates a bucket's counter from the ledger. Must run inside the caller's transaction. */
  private seedBucket(budget: Budget, bucket: Bucket): Sums {
    const end = bucket.end ?? Number.MAX_SAFE_INTEGER;
    const args = budget.scope.kind === 'global' ? [bucket.start, end] : [budget.scope.id, bucket.start, end];
    const sums = this.seedStatement(budget.scope).get(...args) as Sums;
    this.s.insertCounter.run(budget.key, bucket.start, bucket.end, bucketRetiresAt(budget.window, bucket), sums.tokens, sums.micros);
    return sums;
  }

  private ensureBucket(budget: Budget, bucket: Bucket): Sums {
    return this.s.counter.get(budget.key, bucket.start) ?? this.seedBucket(budget, bucket);
  }

  /** Settled usage of a budget's window at `now`, and the start of its oldest bucket with usage. */
  private windowUsage(budget: Budget, now: number): Sums & { oldestUsed: number | null } {
    if (budget.window.kind !== 'rolling') {
      const sums = this.ensureBucket(budget, bucketAt(budget.window, now));
      return { ...sums, oldestUsed: null };
    }
    const buckets = bucketsAt(budget.window, now);
    const first = (buckets[0] as Bucket).start;
    const present = new Map(
      this.s.counterRange.all(budget.key, first, (buckets[buckets.length - 1] as Bucket).start).map((r) => [r.bucket_start, r]),
    );
    let tokens = 0;
    let micros = 0;
    let oldestUsed: number | null = null;
    for (const bucket of buckets) {
      const sums = present.get(bucket.start) ?? this.seedBucket(budget, bucket);
      tokens += sums.tokens;
      micros += sums.micros;
      if (oldestUsed === null && (sums.tokens > 0 || sums.micros > 0)) oldestUsed = bucket.start;
    }
    return { tokens, micros, oldestUsed };
  }

  private stateOf(budget: Budget, now: number): BudgetState {
    const used = this.windowUsage(budget, now);
    const reserved = this.s.reserved.get(budget.key) as Sums;
    const usage: BudgetUsage = {
      usedTokens: used.tokens,
      usedMicros: used.micros,
      reservedTokens: reserved.tokens,
      reservedMicros: reserved.micros,
    };
    return { budget, usage, resetsAt: nextResetAt(budget.window, now, used.oldestUsed) };
  }

  private statesFor(scopes: readonly Scope[], now: number): BudgetState[] {
    return this.budgetsFor(scopes).map((b) => this.stateOf(b, now));
  }

  async budgetStates(scopes: Scope[], now: number): Promise<BudgetState[]> {
    // A transaction: a first read seeds counters, and all budgets are read at one instant.
    return this.db.transaction(() => this.statesFor(scopes, now))();
  }

  /* ── holds and settlement ──────────────────────────────────────────────── */

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    return this.reserveTx(request);
  }

  private readonly reserveTx = (request: ReserveRequest): ReserveResult =>
    this.db.transaction((): ReserveResult => {
      const states = this.statesFor(scopesOf(request.subject), request.now);
      const decision = admit(states, request.quote);
      if (!decision.ok) return { ok: false, blocking: states[decision.blockingIndex] as BudgetState, budgets: states };
      const { subject } = request;
      const expiresAt = request.now + request.ttlMs;
      this.s.insertHold.run(
        request.holdId,
        subject.userId,
        subject.projectId,
        subject.keyId,
        decision.tokens,
        decision.micros,
        decision.outputTokens,
        request.now,
        expiresAt,
      );
      for (const state of states) {
        this.s.addHoldBudget.run(request.holdId, state.budget.key, decision.tokens, decision.micros);
        state.usage.reservedTokens += decision.tokens;
        state.usage.reservedMicros += decision.micros;
      }
      const hold: Hold = {
        id: request.holdId,
        subject,
        tokens: decision.tokens,
        micros: decision.micros,
        outputTokens: decision.outputTokens,
        createdAt: request.now,
        expiresAt,
      };
      return { ok: true, hold, budgets: states };
    }).immediate();

  async extend(holdId: string, amount: { tokens: number; micros: number }, now: number, ttlMs: number): Promise<ExtendResult> {
    return this.db.transaction((): ExtendResult => {
      const row = this.s.getHold.get(holdId);
      if (!row) return { ok: false, reason: 'unknown-hold' };
      const states = this.statesFor(scopesOf(toHold(row).subject), now);
      const decision = admit(states, { tokens: amount.tokens, micros: amount.micros });
      if (!decision.ok) return { ok: false, reason: 'exceeded', blocking: states[decision.blockingIndex] as BudgetState };
      this.s.extendHold.run(amount.tokens, amount.micros, amount.tokens, now + ttlMs, holdId);
      // A budget created while the request ran joins the hold from here on.
      for (const state of states) this.s.addHoldBudget.run(holdId, state.budget.key, amount.tokens, amount.micros);
      return { ok: true, hold: toHold(this.s.getHold.get(holdId) as HoldRow) };
    }).immediate();
  }

  async settle(request: SettleRequest): Promise<SettleResult> {
    return this.settleTx(request);
  }

  private readonly settleTx = (request: SettleRequest): SettleResult =>
    this.db.transaction((): SettleResult => {
      const previous = this.s.entryByRequest.get(request.holdId);
      if (previous) return { entry: toEntry(previous), duplicate: true };
      this.s.deleteHold.run(request.holdId);
      const { subject, usage, now } = request;
      const budgets = this.budgetsFor(scopesOf(subject));
      // Buckets are seeded before the entry is written, then incremented by it: exact either way.
      const buckets = budgets.map((b) => {
        const bucket = bucketAt(b.window, now);
        this.ensureBucket(b, bucket);
        return bucket;
      });
      const row = this.s.insertEntry.get(
        request.holdId,
        now,
        subject.userId,
        subject.projectId,
        subject.keyId,
        usage.model,
        usage.inputTokens,
        usage.outputTokens,
        usage.cachedTokens,
        usage.reasoningTokens,
        usage.costMicros,
        usage.source,
        usage.outcome,
        usage.latencyMs,
        usage.sessionId,
        Object.keys(usage.tags).length === 0 ? null : JSON.stringify(usage.tags),
      ) as LedgerRow;
      const tokens = usage.inputTokens + usage.outputTokens;
      budgets.forEach((b, i) => this.s.addToCounter.run(tokens, usage.costMicros, b.key, (buckets[i] as Bucket).start));
      return { entry: toEntry(row), duplicate: false };
    }).immediate();

  async release(holdId: string): Promise<boolean> {
    return this.s.deleteHold.run(holdId).changes > 0;
  }

  async expireHolds(now: number): Promise<number> {
    return this.db.transaction(() => {
      this.s.retireCounters.run(now);
      return this.s.expireHolds.run(now).changes;
    })();
  }

  async listHolds(): Promise<Hold[]> {
    return this.s.listHolds.all().map(toHold);
  }

  /* ── reports ───────────────────────────────────────────────────────────── */

  async usageReport(query: UsageQuery): Promise<UsageRow[]> {
    const sums = `COUNT(*) AS requests, SUM(input_tokens) AS inputTokens, SUM(output_tokens) AS outputTokens,
      SUM(cached_tokens) AS cachedTokens, SUM(reasoning_tokens) AS reasoningTokens,
      SUM(input_tokens + output_tokens) AS totalTokens, SUM(cost_micros) AS costMicros`;
    if (query.groupBy !== 'day') {
      const column = { user: 'user_id', project: "COALESCE(project_id, '')", key: 'key_id', model: 'model' }[query.groupBy];
      return this.db
        .prepare<[number, number], UsageRow>(
          `SELECT ${column} AS "group", ${sums} FROM ledger WHERE at >= ? AND at < ? GROUP BY 1 ORDER BY costMicros DESC, totalTokens DESC, 1`,
        )
        .all(query.from, query.to);
    }
    // Local days of an IANA zone cannot be computed in SQL: sum each day's index range instead.
    const daySum = this.db.prepare<[number, number], Omit<UsageRow, 'group'>>(`SELECT ${sums} FROM ledger WHERE at >= ? AND at < ?`);
    const rows: UsageRow[] = [];
    let day = DateTime.fromMillis(query.from, { zone: query.timeZone }).startOf('day');
    while (day.toMillis() < query.to) {
      const next = day.plus({ days: 1 }).startOf('day');
      const sums = daySum.get(Math.max(day.toMillis(), query.from), Math.min(next.toMillis(), query.to)) as Omit<UsageRow, 'group'>;
      if (sums.requests > 0) rows.push({ group: day.toISODate() as string, ...sums });
      day = next;
    }
    return rows;
  }

  /* ── meta ──────────────────────────────────────────────────────────────── */

  async getMeta(key: string): Promise<string | null> {
    return this.s.getMeta.get(key)?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.s.setMeta.run(key, value);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** For tests: every counter row next to the ledger sum it must equal. */
  counterAudit(): Array<{ budgetKey: string; bucketStart: number; counted: Sums; ledger: Sums }> {
    const rows = this.db
      .prepare<[], { budget_key: string; bucket_start: number; bucket_end: number | null; tokens: number; micros: number }>(
        'SELECT * FROM usage_counters',
      )
      .all();
    return rows.map((r) => {
      const scope = parseScopeText(r.budget_key.slice(0, r.budget_key.indexOf('|')));
      const end = r.bucket_end ?? Number.MAX_SAFE_INTEGER;
      const args = scope.kind === 'global' ? [r.bucket_start, end] : [scope.id, r.bucket_start, end];
      return {
        budgetKey: r.budget_key,
        bucketStart: r.bucket_start,
        counted: { tokens: r.tokens, micros: r.micros },
        ledger: this.seedStatement(scope).get(...args) as Sums,
      };
    });
  }
}
