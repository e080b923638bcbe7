import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database, { type Database as Db, type Statement, type Transaction } from 'better-sqlite3';
import type { DefaultBudget } from '../../config/schema.js';
import { admit, type BudgetUsage } from '../../quota/admission.js';
import { budgetPeriod, budgetsForModel, modelsRegExpSource, resolveBudgets, withGrants, type Budget } from '../../quota/budgets.js';
import { formatScope, scopesOf, scopesOfKey, type RequestSubject, type Route, type Scope } from '../../quota/scope.js';
import {
  countedSpans,
  decideRates,
  effectiveLimit,
  formatRateScope,
  rateScopesOf,
  type RateCheck,
  type RateLimitOverride,
  type RateLimitSetting,
  type RateScope,
} from '../../quota/rate-limits.js';
import {
  bucketAt,
  bucketRetiresAt,
  nextResetAt,
  type Bucket,
} from '../../quota/window.js';
import type { AlertEvent } from '../../alerts/alert-event.js';
import { detectSpikes, type SpikeConfig, type SubjectUsage } from '../../alerts/spikes.js';
import type {
  AlertQuery,
  AlertRecord,
  ApiKey,
  BudgetInput,
  BudgetState,
  Created,
  DueDelivery,
  ExtendResult,
  ExternalIdChange,
  Hold,
  KeyIdentity,
  KeyStates,
  Decided,
  Grant,
  GrantInput,
  QuotaRequest,
  QuotaRequestInput,
  QuotaRequestState,
  RequestDecision,
  RequestNotice,
  LedgerEntry,
  OrphanedHold,
  Project,
  RefusalStyle,
  BudgetReserveResult,
  RateRequest,
  ReserveRequest,
  ReserveResult,
  SettleRequest,
  SettleResult,
  Store,
  UsageQuery,
  UsageRow,
  User,
  UserChange,
  UserRef,
} from '../types.js';
import { HoldBook } from '../../quota/hold-book.js';
import { AlertRecorder, type AlertOptions, type BudgetMove } from './alert-recorder.js';
import { newId } from '../../auth/secrets.js';
import { QuotaRequestTable } from './quota-request-table.js';
import { decided, grantOf, newRequest } from '../sql/request-decision.js';
import { HoldJournal, type JournalWrite } from './hold-journal.js';
import { RateWindows, type RateWindowRow } from './rate-windows.js';
import { RollingTotal } from './rolling-total.js';
import { localDays, type LocalDay } from '../sql/local-day.js';
import { migrate } from './migrations.js';
import {
  parseScopeText,
  sortedUnique,
  toBudget,
  toDelivery,
  toEntry,
  toGrant,
  toKey,
  toProject,
  toUser,
  toUserRef,
  type BudgetRow,
  type DeliveryRow,
  type GrantRow,
  type KeyRow,
  type LedgerRow,
  type UserRow,
  type UserWithIdsRow,
} from '../sql/rows.js';
import { SCOPE_COLUMN, scopeSumsSql, spikeUsageArgs, spikeUsageSql } from '../sql/ledger-sql.js';
import { REPORT_DAYS_DDL, toUsageRows, usageSql } from '../sql/usage-sql.js';

export interface SqliteStoreOptions {
  /** Database file, or ':memory:'. */
  file: string;
  defaultBudgets: readonly DefaultBudget[];
  defaultThresholds: number[];
  /** Where alerts go. Without it alerts are still recorded (for audit), with no deliveries. */
  alerts?: AlertOptions;
  /**
   * `normal` (the default): in WAL mode a commit survives the process being killed at any instant,
   * but a power loss or OS crash may undo the last commits. `full`: each commit (one per group of
   * settles) waits for the disk to confirm, and survives those too.
   */
  synchronous?: 'normal' | 'full';
}

interface Sums {
  tokens: number;
  micros: number;
}

interface CachedSums extends Sums {
  end: number | null;
  retiresAt: number | null;
}

interface CounterChange {
  budgetKey: string;
  bucketStart: number;
  cached: CachedSums;
  tokens: number;
  micros: number;
}

interface QueuedSettle {
  request: SettleRequest;
  resolve: (result: SettleResult) => void;
  reject: (error: unknown) => void;
}

/** Retention's rollup slot: a quarter hour, the finest step of any UTC offset in use (see migration 4). */
export const ROLLUP_SLOT_MS = 15 * 60_000;

/** Entries rolled up per transaction, so retention never holds the writer (and settles) for long. */
const ROLLUP_BATCH = 5_000;

/** Bounds one group commit, so a burst of settles does not hold the event loop for long. */
const MAX_SETTLES_PER_COMMIT = 256;

const HOUR_MS = 3_600_000;

/** Users with their external ids as a JSON array, sorted (see UserWithIdsRow). */
const USER_WITH_IDS = `SELECT u.*, (SELECT json_group_array(e.external_id ORDER BY e.external_id) FROM user_external_ids e WHERE e.user_id = u.id) AS external_ids
  FROM users u`;

/**
 * The embedded store. Every method is one synchronous better-sqlite3 transaction, which is what
 * makes check-and-reserve atomic: nothing else runs in this process between the check and the write,
 * and one process owns the file. That ownership also lets stored budgets be cached in memory.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Db;
  /**
   * The two write transactions every request goes through, made once: better-sqlite3 builds four
   * wrapper functions for each `transaction()` call, which a group commit would otherwise pay
   * every time.
   */
  private readonly settleTransaction: Transaction<(requests: SettleRequest[], withJournal: boolean) => ReturnType<SqliteStore['settleBatch']>>;
  private readonly journalTransaction: Transaction<() => JournalWrite>;
  private readonly defaults: readonly DefaultBudget[];
  private readonly defaultThresholds: number[];
  private storedBudgets: Budget[] | null = null;
  private readonly seedStatements = new Map<string, Statement<unknown[], Sums>>();
  private readonly spikeStatements = new Map<string, Statement<unknown[], { id: string; last: number; base: number }>>();
  private readonly s;
  private readonly book = new HoldBook();
  /** Active keys by secret hash; entries leave when revoked (this process is the only writer). */
  private readonly identities = new Map<string, KeyIdentity>();
  /** Every grant by budget key, as stored (a few per budget at most; ended ones are skipped when read). */
  private readonly grants = new Map<string, Grant[]>();
  private readonly requests: QuotaRequestTable;
  /** Counters of the buckets in use, mirroring their rows in usage_counters. */
  private readonly counterCache = new Map<string, CachedSums>();
  /** Each rolling budget's window total, slid along with its window (see RollingTotal). */
  private readonly rollingTotals = new Map<string, RollingTotal>();
  /** Budgets per list of scopes; cleared whenever a stored budget changes. */
  private readonly resolved = new Map<string, Budget[]>();
  private readonly settleQueue: QueuedSettle[] = [];
  private readonly alerts: AlertRecorder;
  private readonly alertsRecorded: () => void;
  /** The holds of live requests, copied to the file for recovery after a crash. */
  private readonly journal: HoldJournal;
  /** Holds the previous process left in the file, until `orphanedHolds` hands them out. */
  private orphans: OrphanedHold[] = [];
  /** The admin's rate limits by subject (`user:alice`), read at open and kept in step with the table. */
  private readonly rateSettings = new Map<string, RateLimitSetting>();
  private readonly rateWindows = new RateWindows();
  private flushScheduled = false;

  private constructor(db: Db, options: SqliteStoreOptions) {
    this.db = db;
    this.settleTransaction = db.transaction(this.settleBatch);
    this.journalTransaction = db.transaction(this.writeJournal);
    this.defaults = options.defaultBudgets;
    this.defaultThresholds = options.defaultThresholds;
    this.alerts = new AlertRecorder(db, options.alerts ?? { channelsFor: () => [], projection: true });
    this.alertsRecorded = options.alerts?.recorded ?? (() => undefined);
    this.requests = new QuotaRequestTable(db);
    this.journal = new HoldJournal(db);
    this.s = {
      insertProject: db.prepare('INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)'),
      getProject: db.prepare<[string], { id: string; name: string; created_at: number }>('SELECT * FROM projects WHERE id = ?'),
      listProjects: db.prepare<[], { id: string; name: string; created_at: number }>('SELECT * FROM projects ORDER BY id'),
      renameProject: db.prepare('UPDATE projects SET name = ? WHERE id = ?'),
      insertUser: db.prepare('INSERT INTO users (id, name, project_id, created_at) VALUES (?, ?, ?, ?)'),
      updateUser: db.prepare('UPDATE users SET name = ?, project_id = ? WHERE id = ?'),
      getUser: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
      getUserWithIds: db.prepare<[string], UserWithIdsRow>(`${USER_WITH_IDS} WHERE u.id = ?`),
      listUsers: db.prepare<[], UserWithIdsRow>(`${USER_WITH_IDS} ORDER BY u.id`),
      userOfExternalId: db.prepare<[string], UserRow>('SELECT u.* FROM user_external_ids x JOIN users u ON u.id = x.user_id WHERE x.external_id = ?'),
      externalIdOwner: db.prepare<[string], { user_id: string }>('SELECT user_id FROM user_external_ids WHERE external_id = ?'),
      insertExternalId: db.prepare('INSERT INTO user_external_ids (external_id, user_id, linked_at) VALUES (?, ?, ?)'),
      deleteExternalId: db.prepare('DELETE FROM user_external_ids WHERE external_id = ?'),
      insertKey: db.prepare(
        'INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, service, refusal_style, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      setRefusalStyle: db.prepare('UPDATE api_keys SET refusal_style = ? WHERE id = ?'),
      getKey: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE id = ?'),
      listKeys: db.prepare<[], KeyRow>('SELECT * FROM api_keys ORDER BY created_at, id'),
      listUserKeys: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id'),
      findKey: db.prepare<[string], KeyRow & { user_name: string; project_id: string | null; user_created_at: number }>(
        `SELECT k.*, u.name AS user_name, u.project_id, u.created_at AS user_created_at
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = ? AND k.revoked_at IS NULL`,
      ),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      listBudgets: db.prepare<[], BudgetRow>('SELECT * FROM budgets ORDER BY scope, period'),
      getBudgetByPeriod: db.prepare<[string, string], BudgetRow>('SELECT * FROM budgets WHERE scope = ? AND period = ?'),
      getBudget: db.prepare<[string], BudgetRow>('SELECT * FROM budgets WHERE id = ?'),
      upsertBudget: db.prepare(
        `INSERT INTO budgets (id, scope, period, window, limit_tokens, limit_micros, thresholds, on_limit, downgrade_to, models, fallback, created_at, updated_at)
         VALUES (@id, @scope, @period, @window, @limitTokens, @limitMicros, @thresholds, @onLimit, @downgradeTo, @models, @fallback, @now, @now)
         ON CONFLICT (scope, period) DO UPDATE SET window = excluded.window, limit_tokens = excluded.limit_tokens,
           limit_micros = excluded.limit_micros, thresholds = excluded.thresholds, on_limit = excluded.on_limit,
           downgrade_to = excluded.downgrade_to, models = excluded.models, fallback = excluded.fallback, updated_at = excluded.updated_at`,
      ),
      deleteBudget: db.prepare('DELETE FROM budgets WHERE id = ?'),
      deleteCounters: db.prepare('DELETE FROM usage_counters WHERE budget_key = ?'),
      deleteUnstoredCounters: db.prepare(
        `DELETE FROM usage_counters WHERE budget_key NOT IN (SELECT scope || '|' || period FROM budgets)`,
      ),
      counter: db.prepare<[string, number], Sums>('SELECT tokens, micros FROM usage_counters WHERE budget_key = ? AND bucket_start = ?'),
      storeCounter: db.prepare(
        `INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = excluded.tokens, micros = excluded.micros`,
      ),
      retireCounters: db.prepare('DELETE FROM usage_counters WHERE retires_at <= ?'),
      entryByRequest: db.prepare<[string], LedgerRow>('SELECT * FROM ledger WHERE request_id = ?'),
      recentEntries: db.prepare<[number], LedgerRow>('SELECT * FROM ledger ORDER BY id DESC LIMIT ?'),
      // ledger_user_at (user_id, at, and the rowid id) gives this order without a sort.
      recentUserEntries: db.prepare<[string, number], LedgerRow>('SELECT * FROM ledger WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?'),
      // No RETURNING: the entry is built from what was written, rather than SQLite handing every column
      // of the new row back as an object on every settle.
      insertEntry: db.prepare<unknown[]>(
        `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
           reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, overrun_tokens, cache_write_tokens,
           cache_write_1h_tokens, upstream, saved_tokens, saved_micros)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (request_id) DO NOTHING`,
      ),
      dueDeliveries: db.prepare<[number, number], { payload: string; channel: string; attempts: number }>(
        `SELECT a.payload, d.channel, d.attempts FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY a.fired_at, a.id, d.channel LIMIT ?`,
      ),
      markDelivered: db.prepare(
        `UPDATE alert_deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = NULL
         WHERE alert_id = ? AND channel = ? AND state = 'pending'`,
      ),
      markFailed: db.prepare(
        `UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE alert_id = ? AND channel = ? AND state = 'pending'`,
      ),
      alertExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM alerts WHERE id = ?'),
      retryDeliveries: db.prepare(`UPDATE alert_deliveries SET next_attempt_at = ? WHERE alert_id = ? AND state = 'pending'`),
      deliveriesOf: db.prepare<[string], DeliveryRow>(
        'SELECT * FROM alert_deliveries WHERE alert_id = ? ORDER BY channel',
      ),
      rollupInRange: db.prepare<[number, number], { one: number }>('SELECT 1 AS one FROM ledger_rollup WHERE slot_at >= ? AND slot_at < ? LIMIT 1'),
      // One batch of retention: the oldest entries before the cutoff, in a fixed order so that the
      // sum and the delete in the same transaction see the same rows.
      rollUp: db.prepare<[number, number], never>(
        `INSERT INTO ledger_rollup (slot_at, user_id, project_id, key_id, model, upstream, requests, input_tokens, output_tokens,
           cached_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_micros, latency_ms, cache_hits, saved_tokens,
           saved_micros)
         SELECT (at / ${ROLLUP_SLOT_MS}) * ${ROLLUP_SLOT_MS}, user_id, COALESCE(project_id, ''), key_id, model, COALESCE(upstream, ''), COUNT(*),
           SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens),
           SUM(cost_micros), SUM(latency_ms), SUM(source = 'cache'), SUM(saved_tokens), SUM(saved_micros)
         FROM ledger WHERE id IN (SELECT id FROM ledger WHERE at < ? ORDER BY at, id LIMIT ?)
         GROUP BY 1, 2, 3, 4, 5, 6
         ON CONFLICT (slot_at, user_id, project_id, key_id, model, upstream) DO UPDATE SET requests = requests + excluded.requests,
           input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
           cached_tokens = cached_tokens + excluded.cached_tokens, cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
           cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
           reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
           cost_micros = cost_micros + excluded.cost_micros, latency_ms = latency_ms + excluded.latency_ms,
           cache_hits = cache_hits + excluded.cache_hits, saved_tokens = saved_tokens + excluded.saved_tokens,
           saved_micros = saved_micros + excluded.saved_micros`,
      ),
      deleteRolledUp: db.prepare<[number, number], never>('DELETE FROM ledger WHERE id IN (SELECT id FROM ledger WHERE at < ? ORDER BY at, id LIMIT ?)'),
      insertGrant: db.prepare(
        `INSERT INTO grants (id, budget_key, scope, tokens, micros, starts_at, ends_at, decided_by, request_id, reason, created_at)
         VALUES (@id, @budgetKey, @scope, @tokens, @micros, @startsAt, @endsAt, @decidedBy, @requestId, @reason, @createdAt)`,
      ),
      listGrants: db.prepare<[], GrantRow>('SELECT * FROM grants ORDER BY created_at DESC, id DESC'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /**
   * Opens (creating if needed) and migrates the database. A new process starts with no live holds;
   * those of the previous one's requests that carried a pending charge are left in the file, and
   * `orphanedHolds` hands them out to be settled. Counters of config defaults are dropped when the
   * defaults changed, since a default that disappears and comes back must not find stale counts.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    if (options.file !== ':memory:') mkdirSync(path.dirname(options.file), { recursive: true });
    const db = new Database(options.file);
    db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a committed transaction survives the process being killed at any instant, not
    // an OS crash or power loss (the WAL is synced at checkpoints only). FULL syncs it every commit.
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    registerModelMatch(db);
    // Per connection, never persisted: the local days a report by day joins the ledger with.
    db.exec(REPORT_DAYS_DDL);
    const store = new SqliteStore(db, options);
    store.db.transaction(() => {
      const fingerprint = JSON.stringify(options.defaultBudgets);
      if (store.s.getMeta.get('default_budgets')?.value !== fingerprint) {
        store.s.deleteUnstoredCounters.run();
        store.s.setMeta.run('default_budgets', fingerprint);
      }
    })();
    store.orphans = store.journal.loadOrphans();
    for (const row of store.s.listGrants.all()) store.remember(toGrant(row));
    store.loadRates();
    return store;
  }

  /** The file is this process's own: it answers whenever the process does. */
  async ping(): Promise<void> {}

  /** How durable a commit is, as SQLite reports it for this connection (see SqliteStoreOptions.synchronous). */
  get synchronous(): string {
    const level = this.db.pragma('synchronous', { simple: true }) as number;
    return ['off', 'normal', 'full', 'extra'][level] ?? String(level);
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

  async renameProject(id: string, name: string): Promise<Project | null> {
    if (this.s.renameProject.run(name, id).changes === 0) return null;
    return this.getProject(id);
  }

  async createUser(user: { id: string; name: string; projectId: string | null; externalIds?: readonly string[] }, now: number): Promise<Created<User>> {
    return this.db.transaction((): Created<User> => {
      if (this.s.getUser.get(user.id)) return { ok: false, reason: 'exists', field: 'id' };
      if (user.projectId !== null && !this.s.getProject.get(user.projectId)) {
        return { ok: false, reason: 'missing-reference', field: 'projectId' };
      }
      const externalIds = sortedUnique(user.externalIds ?? []);
      const taken = externalIds.find((id) => this.s.externalIdOwner.get(id));
      if (taken !== undefined) return { ok: false, reason: 'exists', field: 'externalIds', value: taken };
      this.s.insertUser.run(user.id, user.name, user.projectId, now);
      for (const id of externalIds) this.s.insertExternalId.run(id, user.id, now);
      return { ok: true, value: { id: user.id, name: user.name, projectId: user.projectId, createdAt: now, externalIds } };
    })();
  }

  async listUsers(): Promise<User[]> {
    return this.s.listUsers.all().map(toUser);
  }

  async getUser(id: string): Promise<User | null> {
    const row = this.s.getUserWithIds.get(id);
    return row ? toUser(row) : null;
  }

  async updateUser(id: string, change: { name?: string; projectId?: string | null }): Promise<UserChange> {
    const result = this.db.transaction((): UserChange => {
      const row = this.s.getUser.get(id);
      if (!row) return { ok: false, reason: 'missing-user' };
      const projectId = change.projectId === undefined ? row.project_id : change.projectId;
      if (projectId !== null && !this.s.getProject.get(projectId)) return { ok: false, reason: 'missing-reference', field: 'projectId' };
      this.s.updateUser.run(change.name ?? row.name, projectId, id);
      return { ok: true, user: toUser(this.s.getUserWithIds.get(id) as UserWithIdsRow) };
    })();
    // A key's cached identity carries its user's name and project: the next request must see the new ones.
    if (result.ok) for (const [hash, identity] of this.identities) if (identity.user.id === id) this.identities.delete(hash);
    return result;
  }

  async linkExternalId(userId: string, externalId: string, now: number): Promise<ExternalIdChange> {
    return this.db.transaction((): ExternalIdChange => {
      if (!this.s.getUser.get(userId)) return { ok: false, reason: 'missing-user' };
      const owner = this.s.externalIdOwner.get(externalId)?.user_id;
      if (owner !== undefined && owner !== userId) return { ok: false, reason: 'taken', userId: owner };
      if (owner === undefined) this.s.insertExternalId.run(externalId, userId, now);
      return { ok: true, user: toUser(this.s.getUserWithIds.get(userId) as UserWithIdsRow), changed: owner === undefined };
    })();
  }

  async unlinkExternalId(userId: string, externalId: string): Promise<ExternalIdChange> {
    return this.db.transaction((): ExternalIdChange => {
      if (!this.s.getUser.get(userId)) return { ok: false, reason: 'missing-user' };
      const owner = this.s.externalIdOwner.get(externalId)?.user_id;
      if (owner === undefined) return { ok: false, reason: 'not-linked' };
      if (owner !== userId) return { ok: false, reason: 'taken', userId: owner };
      this.s.deleteExternalId.run(externalId);
      return { ok: true, user: toUser(this.s.getUserWithIds.get(userId) as UserWithIdsRow), changed: true };
    })();
  }

  async findUserByExternalId(externalId: string): Promise<User | null> {
    const owner = this.s.externalIdOwner.get(externalId);
    return owner ? this.getUser(owner.user_id) : null;
  }

  async findNamedUser(name: string): Promise<UserRef | null> {
    const row = this.s.userOfExternalId.get(name) ?? this.s.getUser.get(name);
    return row ? toUserRef(row) : null;
  }

  async createKey(
    key: { id: string; userId: string; name: string; service: boolean; refusalStyle?: RefusalStyle | null; secretHash: string; prefix: string },
    now: number,
  ): Promise<Created<ApiKey>> {
    const refusalStyle = key.refusalStyle ?? null;
    return this.db.transaction((): Created<ApiKey> => {
      if (!this.s.getUser.get(key.userId)) return { ok: false, reason: 'missing-reference', field: 'userId' };
      this.s.insertKey.run(key.id, key.userId, key.name, key.prefix, key.secretHash, key.service ? 1 : 0, refusalStyle, now);
      return {
        ok: true,
        value: { id: key.id, userId: key.userId, name: key.name, prefix: key.prefix, service: key.service, refusalStyle, createdAt: now, revokedAt: null },
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
    const known = this.identities.get(secretHash);
    if (known) return known;
    const row = this.s.findKey.get(secretHash);
    if (!row) return null;
    const identity: KeyIdentity = {
      key: toKey(row),
      user: toUserRef({ id: row.user_id, name: row.user_name, project_id: row.project_id, created_at: row.user_created_at }),
    };
    if (this.identities.size >= 10_000) this.identities.clear();
    this.identities.set(secretHash, identity);
    return identity;
  }

  async revokeKey(id: string, now: number): Promise<ApiKey | null> {
    this.s.revokeKey.run(now, id);
    // Revocation takes effect on the next request: forget the key's cached identity.
    for (const [hash, identity] of this.identities) if (identity.key.id === id) this.identities.delete(hash);
    return this.getKey(id);
  }

  async setKeyRefusalStyle(id: string, refusalStyle: RefusalStyle | null): Promise<ApiKey | null> {
    if (this.s.setRefusalStyle.run(refusalStyle, id).changes === 0) return null;
    const key = await this.getKey(id);
    // The proxy reads the style from the cached identity: the next request must see the new one.
    for (const identity of this.identities.values()) if (identity.key.id === id && key) identity.key = key;
    return key;
  }

  /* ── budgets ───────────────────────────────────────────────────────────── */

  async putBudget(input: BudgetInput, now: number): Promise<{ budget: Budget; replaced: Budget | null }> {
    const scope = formatScope(input.scope);
    const models = input.models ?? null;
    const period = budgetPeriod(input.window, models);
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
        models: models === null ? null : JSON.stringify(models),
        fallback: input.fallback?.length ? JSON.stringify(input.fallback) : null,
        now,
      });
      // The window may have moved (another time zone): counters are counted again from the ledger.
      this.forgetCounters(`${scope}|${period}`);
      return { row: this.s.getBudget.get(id) as BudgetRow, replacedRow: existing };
    })();
    this.budgetsChanged();
    return { budget: this.toBudget(result.row), replaced: result.replacedRow === undefined ? null : this.toBudget(result.replacedRow) };
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
      this.forgetCounters(budget.key);
      return budget;
    })();
    this.budgetsChanged();
    return deleted;
  }

  private toBudget(row: BudgetRow): Budget {
    return toBudget(row, this.defaultThresholds);
  }

  private stored(): Budget[] {
    this.storedBudgets ??= this.s.listBudgets.all().map((row) => this.toBudget(row));
    return this.storedBudgets;
  }

  private budgetsChanged(): void {
    this.storedBudgets = null;
    this.resolved.clear();
  }

  private budgetsFor(scopes: readonly Scope[]): Budget[] {
    const cacheKey = scopes.map(formatScope).join(' ');
    let budgets = this.resolved.get(cacheKey);
    if (budgets === undefined) {
      budgets = resolveBudgets(scopes, this.stored(), this.defaults, this.defaultThresholds);
      if (this.resolved.size >= 100_000) this.resolved.clear();
      this.resolved.set(cacheKey, budgets);
    }
    return budgets;
  }

  /* ── counters ──────────────────────────────────────────────────────────── */

  private seedStatement(scope: Scope, byModel: boolean): Statement<unknown[], Sums> {
    const column = scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind];
    const cacheKey = `${column ?? 'global'}${byModel ? ' by model' : ''}`;
    let statement = this.seedStatements.get(cacheKey);
    if (!statement) {
      statement = this.db.prepare<unknown[], Sums>(scopeSumsSql(column, byModel));
      this.seedStatements.set(cacheKey, statement);
    }
    return statement;
  }

  /** A budget's usage in [start, end), counted from the ledger (and its rollup). */
  private ledgerSums(budget: Pick<Budget, 'scope' | 'models'>, start: number, end: number | null): Sums {
    const { scope } = budget;
    const models = modelsRegExpSource(budget.models);
    const args: unknown[] = scope.kind === 'global' ? [] : [scope.id];
    if (models !== null) args.push(models);
    args.push(start, end ?? Number.MAX_SAFE_INTEGER);
    return this.seedStatement(scope, models !== null).get(...args, ...args) as Sums;
  }

  /**
   * A bucket's settled usage: from memory, else its stored counter, else counted from the ledger.
   * Only the first touch of a bucket may read the ledger; every later read is a map look-up. Reading
   * never writes: a counter is stored by the settle that changes it (see `writeSettles`).
   */
  private bucketUsage(budget: Budget, bucket: Bucket): CachedSums {
    const id = `${budget.key}@${bucket.start}`;
    let cached = this.counterCache.get(id);
    if (cached === undefined) {
      const sums = this.s.counter.get(budget.key, bucket.start) ?? this.ledgerSums(budget, bucket.start, bucket.end);
      cached = { tokens: sums.tokens, micros: sums.micros, end: bucket.end, retiresAt: bucketRetiresAt(budget.window, bucket) };
      this.counterCache.set(id, cached);
    }
    return cached;
  }

  /** Settled usage of a budget's window at `now`, and the start of its oldest bucket with usage. */
  private windowUsage(budget: Budget, now: number): Sums & { oldestUsed: number | null } {
    if (budget.window.kind !== 'rolling') {
      const { tokens, micros } = this.bucketUsage(budget, bucketAt(budget.window, now));
      return { tokens, micros, oldestUsed: null };
    }
    // Summed over its buckets only when not known (first touch, a budget change, a clock gone
    // back); then slid along, and settles add to it (see commitSettles).
    const read = (bucket: Bucket) => this.bucketUsage(budget, bucket);
    const known = this.rollingTotals.get(budget.key);
    if (known?.slideTo(now, read)) return known;
    const total = RollingTotal.sum(budget.window.hours, now, read);
    this.rollingTotals.set(budget.key, total);
    return total;
  }

  private stateOf(stored: Budget, now: number): BudgetState {
    const used = this.windowUsage(stored, now);
    const reserved = this.book.reserved(stored.key);
    const usage: BudgetUsage = {
      usedTokens: used.tokens,
      usedMicros: used.micros,
      reservedTokens: reserved.tokens,
      reservedMicros: reserved.micros,
    };
    // The grants active now raise the limits admission checks against, in this same synchronous step.
    const { budget, active } = withGrants(stored, this.grants.get(stored.key), now);
    const state: BudgetState = { budget, usage, resetsAt: nextResetAt(budget.window, now, used.oldestUsed) };
    if (active.length > 0) state.grants = active;
    return state;
  }

  private statesFor(scopes: readonly Scope[], now: number): BudgetState[] {
    return this.budgetsFor(scopes).map((b) => this.stateOf(b, now));
  }

  /** The budgets a request to `route` is bound by: its scopes' (the upstream's included), of its model. */
  private budgetsOfRoute(subject: RequestSubject, route: Route | undefined): Budget[] {
    const budgets = this.budgetsFor(scopesOf(subject, route?.upstream ?? null));
    return budgets.some((b) => b.models) ? budgetsForModel(budgets, route?.model ?? null) : budgets;
  }

  private routeStates(subject: RequestSubject, route: Route | undefined, now: number): BudgetState[] {
    return this.budgetsOfRoute(subject, route).map((b) => this.stateOf(b, now));
  }

  private forgetCounters(budgetKey: string): void {
    this.s.deleteCounters.run(budgetKey);
    this.rollingTotals.delete(budgetKey);
    const prefix = `${budgetKey}@`;
    for (const id of this.counterCache.keys()) if (id.startsWith(prefix)) this.counterCache.delete(id);
  }

  async budgetStates(scopes: Scope[], now: number): Promise<BudgetState[]> {
    return this.statesFor(scopes, now);
  }

  async keyStates(secretHash: string, now: number): Promise<KeyStates | null> {
    const identity = await this.findKeyByHash(secretHash);
    return identity && { identity, states: this.statesFor(scopesOfKey(identity), now) };
  }

  /* ── holds and settlement ──────────────────────────────────────────────── */

  /**
   * Admission is synchronous JavaScript over memory (holds) and cached counters: nothing else runs
   * between the check and the hold being recorded, so no two requests can both take the last room.
   * Rate limits are decided first in the same section, over the in-memory windows (RateWindows)
   * and the holds; an admitted request is counted in them before anything else runs.
   */
  reserve(request: ReserveRequest & { rates?: undefined }): Promise<BudgetReserveResult>;
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    return this.reserveNow(request);
  }

  /** `reserve` without its promise (Store.reserveNow): the proxy's way, one synchronous stretch. */
  reserveNow(request: ReserveRequest & { rates?: undefined }): BudgetReserveResult;
  reserveNow(request: ReserveRequest): ReserveResult;
  reserveNow(request: ReserveRequest): ReserveResult {
    const states = request.ratesOnly === true ? [] : this.routeStates(request.subject, request.route, request.now);
    const rates = request.rates && this.rateChecks(request.subject, request.rates, request.now);
    if (request.rates && rates) {
      const limited = decideRates(rates, request.rates.tokens, request.now, request.rates.alreadyCounted === true);
      if (limited) return { ok: false, rateLimited: limited, rates, budgets: states };
    }
    const decision = admit(states, request.quote);
    if (!decision.ok) return { ok: false, blocking: states[decision.blockingIndex] as BudgetState, budgets: states, ...(rates && { rates }) };
    if (this.book.has(request.holdId)) throw new Error(`hold ${request.holdId} already exists`);
    const hold: Hold = {
      id: request.holdId,
      subject: request.subject,
      tokens: decision.tokens,
      micros: decision.micros,
      outputTokens: decision.outputTokens,
      createdAt: request.now,
      expiresAt: request.now + request.ttlMs,
      ...(request.route ? { route: request.route } : {}),
    };
    const amount = { tokens: decision.tokens, micros: decision.micros };
    this.book.add(
      hold,
      states.map((s) => s.budget.key),
      amount,
    );
    for (const state of states) {
      state.usage.reservedTokens += amount.tokens;
      state.usage.reservedMicros += amount.micros;
    }
    if (request.pending) {
      this.journal.taken(hold.id, request.pending, request.now);
      this.scheduleFlush();
    }
    if (request.rates && rates && request.rates.alreadyCounted !== true) {
      for (const { scope, limit } of rates) this.rateWindows.count(formatRateScope(scope), countedSpans(limit), request.rates.tokens, request.now);
    }
    return { ok: true, hold, budgets: states, outputRoom: decision.outputRoom, ...(rates && { rates }) };
  }

  /* ── rate limits ───────────────────────────────────────────────────────── */

  /** The request's limited scopes, with the counts of the windows their limits need (the rest read 0). */
  private rateChecks(subject: ReserveRequest['subject'], rates: RateRequest, now: number): RateCheck[] {
    const checks: RateCheck[] = [];
    for (const scope of rateScopesOf(subject)) {
      const text = formatRateScope(scope);
      const limit = effectiveLimit(rates.limits[scope.kind], this.rateSettings.get(text)?.limits);
      if (Object.keys(limit).length === 0) continue;
      const spans = countedSpans(limit);
      const minute = spans.includes('minute') ? this.rateWindows.read(text, 'minute', now) : { requests: 0, tokens: 0 };
      checks.push({
        scope,
        limit,
        counts: {
          requestsMinute: minute.requests,
          requestsHour: spans.includes('hour') ? this.rateWindows.read(text, 'hour', now).requests : 0,
          requestsDay: spans.includes('day') ? this.rateWindows.read(text, 'day', now).requests : 0,
          tokensMinute: minute.tokens,
          concurrent: limit.maxConcurrent === undefined ? 0 : this.book.live(text),
        },
      });
    }
    return checks;
  }

  private loadRates(): void {
    const rows = this.db.prepare<[], { scope: string; limits: string; updated_at: number }>('SELECT scope, limits, updated_at FROM rate_limits').all();
    for (const row of rows) this.rateSettings.set(row.scope, toRateSetting(row));
    this.rateWindows.load(this.db.prepare<[], RateWindowRow>('SELECT * FROM rate_windows').all());
  }

  async putRateLimit(scope: RateScope, limits: RateLimitOverride, now: number): Promise<{ setting: RateLimitSetting; replaced: RateLimitSetting | null }> {
    const text = formatRateScope(scope);
    const setting: RateLimitSetting = { scope, limits, updatedAt: now };
    this.db
      .prepare(
        `INSERT INTO rate_limits (scope, limits, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at`,
      )
      .run(text, JSON.stringify(limits), now, now);
    const replaced = this.rateSettings.get(text) ?? null;
    this.rateSettings.set(text, setting);
    return { setting, replaced };
  }

  async listRateLimits(): Promise<RateLimitSetting[]> {
    return [...this.rateSettings.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, setting]) => setting);
  }

  async deleteRateLimit(scope: RateScope): Promise<RateLimitSetting | null> {
    const text = formatRateScope(scope);
    this.db.prepare('DELETE FROM rate_limits WHERE scope = ?').run(text);
    const removed = this.rateSettings.get(text) ?? null;
    this.rateSettings.delete(text);
    return removed;
  }

  async extend(holdId: string, amount: { tokens: number; micros: number }, now: number, ttlMs: number, deliveredTokens?: number): Promise<ExtendResult> {
    const hold = this.book.get(holdId);
    if (!hold) return { ok: false, reason: 'unknown-hold' };
    const states = this.routeStates(hold.subject, hold.route, now);
    const decision = admit(states, { tokens: amount.tokens, micros: amount.micros });
    if (!decision.ok) return { ok: false, reason: 'exceeded', blocking: states[decision.blockingIndex] as BudgetState };
    const grown: Hold = {
      ...hold,
      tokens: hold.tokens + amount.tokens,
      micros: hold.micros + amount.micros,
      outputTokens: hold.outputTokens + amount.tokens,
      expiresAt: now + ttlMs,
    };
    // A budget created while the request ran joins the hold from here on.
    this.book.add(
      grown,
      states.map((s) => s.budget.key),
      amount,
    );
    if (this.journal.grown(holdId, deliveredTokens, now)) this.scheduleFlush();
    return { ok: true, hold: grown };
  }

  /**
   * Settlement is durable before the promise resolves. Settles that arrive in the same turn of the
   * event loop are written in one transaction (group commit): one disk commit for many requests.
   */
  settle(request: SettleRequest): Promise<SettleResult> {
    return new Promise((resolve, reject) => {
      this.book.markSettling(request.holdId);
      this.settleQueue.push({ request, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** One commit a turn of the event loop later, for the settles and hold changes queued until then. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.settleQueue.length === 0) this.commitJournal();
    while (this.settleQueue.length > 0) this.commitSettles(this.settleQueue.splice(0, MAX_SETTLES_PER_COMMIT), true);
  }

  /** The holds' changes alone, when no settle shares their commit (or theirs failed). */
  private commitJournal(): void {
    if (!this.journal.hasWrites) return;
    try {
      this.journal.committed(this.journalTransaction.immediate());
    } catch (error) {
      // What is at stake is the recovery of requests after a crash, not the requests: they go on,
      // and the changes are tried again with the next commit.
      console.error('[lobe-quota] could not copy the holds of live requests to the database:', (error as Error).message);
    }
  }

  private readonly writeJournal = () =>
    this.journal.write(
      (id) => this.book.get(id),
      (id) => this.book.isSettling(id),
    );

  private commitSettles(batch: QueuedSettle[], withJournal: boolean): void {
    let written: ReturnType<typeof this.writeSettles>;
    const journaled = withJournal && this.journal.hasWrites;
    try {
      written = this.writeSettles(
        batch.map((q) => q.request),
        journaled,
      );
    } catch (error) {
      // Counters first counted inside the rolled-back transaction were not stored: count them again.
      this.counterCache.clear();
      this.rollingTotals.clear();
      if (batch.length === 1 && !journaled) {
        for (const q of batch) q.reject(error);
        return;
      }
      // One bad settle must not fail the others that shared its commit, nor the holds' changes
      // them: the changes alone, then each settle alone.
      if (journaled) this.commitJournal();
      for (const q of batch) this.commitSettles([q], false);
      return;
    }
    if (written.journal) this.journal.committed(written.journal);
    if (written.alerted) this.alertsRecorded();
    // Only now, after the commit, does memory change: counters up and holds gone, in one step.
    for (const { budgetKey, bucketStart, cached, tokens, micros } of written.changes) {
      cached.tokens += tokens;
      cached.micros += micros;
      const rolling = this.rollingTotals.get(budgetKey);
      if (rolling && !rolling.add(bucketStart, { tokens, micros })) this.rollingTotals.delete(budgetKey);
    }
    batch.forEach((q, i) => {
      this.book.remove(q.request.holdId);
      this.journal.settled(q.request.holdId);
      q.resolve(written.results[i] as SettleResult);
    });
  }

  /** The settles of one group commit and, with them, the holds' changes: run in `settleTransaction`. */
  private readonly settleBatch = (requests: SettleRequest[], withJournal: boolean) => {
    const journal = withJournal ? this.writeJournal() : null;
    // Buckets are loaded before any entry is written, so one first counted from the ledger here
    // does not already contain an entry of this batch (which then adds to it).
    const moves = new Map<string, BudgetMove>();
    const plans = requests.map(({ subject, usage, now }) =>
      this.budgetsOfRoute(subject, { model: usage.model, upstream: usage.upstream ?? null }).map((budget) => {
        const bucket = bucketAt(budget.window, now);
        const cached = this.bucketUsage(budget, bucket);
        if (!moves.has(budget.key)) {
          const { tokens, micros, oldestUsed } = this.windowUsage(budget, now);
          moves.set(budget.key, { budget, before: { tokens, micros }, added: { tokens: 0, micros: 0 }, oldestUsed, now });
        }
        return { budgetKey: budget.key, bucketStart: bucket.start, cached };
      }),
    );
    const results: SettleResult[] = [];
    const changes = new Map<CachedSums, CounterChange>();
    const settledHere = new Map<string, LedgerEntry>();
    let alerted = 0;
    requests.forEach(({ holdId, subject, usage, now }, i) => {
      // The hold's row goes in the transaction that charges it (or found it charged before).
      this.journal.settle(holdId);
      const settledBefore = settledHere.get(holdId);
      if (settledBefore) {
        results.push({ entry: settledBefore, duplicate: true });
        return;
      }
      // A request settled before (a recovered hold settled twice) keeps its entry: the insert
      // does nothing, and only then is the entry read, rather than looked up before every insert.
      const { changes: inserted, lastInsertRowid } = this.s.insertEntry.run(
        holdId,
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
        usage.overrunTokens ?? 0,
        usage.cacheWriteTokens ?? 0,
        usage.cacheWrite1hTokens ?? 0,
        usage.upstream ?? null,
        usage.savedTokens ?? 0,
        usage.savedMicros ?? 0,
      );
      if (inserted === 0) {
        results.push({ entry: toEntry(this.s.entryByRequest.get(holdId) as LedgerRow), duplicate: true });
        return;
      }
      // Read back, the row would hold exactly these values: a STRICT table refuses what it would have to convert.
      const entry: LedgerEntry = {
        id: Number(lastInsertRowid),
        requestId: holdId,
        at: now,
        userId: subject.userId,
        projectId: subject.projectId,
        keyId: subject.keyId,
        model: usage.model,
        upstream: usage.upstream ?? null,
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        cachedTokens: usage.cachedTokens,
        cacheWriteTokens: usage.cacheWriteTokens ?? 0,
        cacheWrite1hTokens: usage.cacheWrite1hTokens ?? 0,
        reasoningTokens: usage.reasoningTokens,
        costMicros: usage.costMicros,
        source: usage.source,
        outcome: usage.outcome,
        latencyMs: usage.latencyMs,
        sessionId: usage.sessionId,
        tags: { ...usage.tags },
        overrunTokens: usage.overrunTokens ?? 0,
        savedTokens: usage.savedTokens ?? 0,
        savedMicros: usage.savedMicros ?? 0,
      };
      // In the transaction of the entry it reports, as budget alerts are.
      if (entry.overrunTokens > 0 && this.alerts.recordOverrun(entry)) alerted++;
      for (const plan of plans[i] ?? []) {
        const change = changes.get(plan.cached) ?? { budgetKey: plan.budgetKey, bucketStart: plan.bucketStart, cached: plan.cached, tokens: 0, micros: 0 };
        change.tokens += usage.inputTokens + usage.outputTokens;
        change.micros += usage.costMicros;
        changes.set(plan.cached, change);
        const move = moves.get(plan.budgetKey) as BudgetMove;
        move.added.tokens += usage.inputTokens + usage.outputTokens;
        move.added.micros += usage.costMicros;
        move.now = Math.max(move.now, now);
      }
      settledHere.set(holdId, entry);
      results.push({ entry, duplicate: false });
    });
    // Counters are stored as absolute values: the one in memory is exact, whether it came from
    // a stored row or from the ledger.
    for (const c of changes.values()) {
      this.s.storeCounter.run(c.budgetKey, c.bucketStart, c.cached.end, c.cached.retiresAt, c.cached.tokens + c.tokens, c.cached.micros + c.micros);
    }
    // Alerts are written with the usage that caused them: both commit, or neither.
    for (const move of moves.values()) if (move.added.tokens > 0 || move.added.micros > 0) alerted += this.alerts.record(move);
    return { results, changes: [...changes.values()], journal, alerted: alerted > 0 };
  };

  private readonly writeSettles = (requests: SettleRequest[], withJournal: boolean) => this.settleTransaction.immediate(requests, withJournal);

  async renew(holdId: string, now: number, ttlMs: number): Promise<boolean> {
    return this.book.renew(holdId, now + ttlMs);
  }

  /** Also releases a hold the previous process left (an orphan its caller chose not to settle). */
  async release(holdId: string): Promise<boolean> {
    const live = this.book.remove(holdId);
    const orphan = !live && this.journal.isOrphan(holdId);
    if (this.journal.dropped(holdId)) this.scheduleFlush();
    return live || orphan;
  }

  async expireHolds(now: number): Promise<number> {
    this.s.retireCounters.run(now);
    for (const [id, cached] of this.counterCache) if (cached.retiresAt !== null && cached.retiresAt <= now) this.counterCache.delete(id);
    const expired = this.book.expire(now);
    for (const id of expired) if (this.journal.dropped(id)) this.scheduleFlush();
    return expired.length;
  }

  async listHolds(): Promise<Hold[]> {
    return this.book.list();
  }

  /**
   * The holds the previous process left in the file (its requests died with it), each handed out
   * once. They stay in the file until settled or released, so a crash before then hands them out
   * again on the next start; their settle's entry is unique per request, so they are charged once.
   */
  async orphanedHolds(_now: number): Promise<OrphanedHold[]> {
    return this.orphans.splice(0);
  }

  /* ── retention ─────────────────────────────────────────────────────────── */

  /**
   * Moves ledger entries older than `before` (rounded down to a slot, so a slot is never split
   * between the two tables) into ledger_rollup, one batch per transaction, yielding to the event
   * loop between batches. Sums do not change, so counters stay valid and nothing is forgotten.
   */
  async rollUpLedger(before: number, batchSize = ROLLUP_BATCH): Promise<number> {
    const cutoff = Math.floor(before / ROLLUP_SLOT_MS) * ROLLUP_SLOT_MS;
    let total = 0;
    for (;;) {
      const moved = this.db.transaction(() => {
        this.s.rollUp.run(cutoff, batchSize);
        return this.s.deleteRolledUp.run(cutoff, batchSize).changes;
      }).immediate();
      total += moved;
      if (moved < batchSize) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /* ── spike detection ───────────────────────────────────────────────────── */

  /**
   * Records an `anomaly` alert for each user, project and key whose last hour is a spike over its
   * baseline (see detectSpikes); at most one per subject and clock hour. Returns the new alerts.
   */
  async recordSpikes(now: number, config: SpikeConfig): Promise<AlertEvent[]> {
    if (!config.enabled) return [];
    const hourAgo = now - HOUR_MS;
    const from = hourAgo - config.baselineHours * HOUR_MS;
    const usage: SubjectUsage[] = [];
    for (const kind of ['user', 'project', 'key'] as const) {
      const rows = this.spikeStatement(kind).all(...spikeUsageArgs(hourAgo, from, now + 1, config.minTokens));
      for (const r of rows) usage.push({ scope: `${kind}:${r.id}`, lastHourTokens: r.last, baselineTokens: r.base });
    }
    const spikes = detectSpikes(usage, config);
    if (spikes.length === 0) return [];
    const fired = this.db.transaction(() => spikes.flatMap((spike) => this.alerts.recordAnomaly(spike, config, now) ?? []))();
    if (fired.length > 0) this.alertsRecorded();
    return fired;
  }

  private spikeStatement(kind: 'user' | 'project' | 'key') {
    let statement = this.spikeStatements.get(kind);
    if (!statement) {
      // Only subjects over the floor in the last hour come back.
      statement = this.db.prepare<unknown[], { id: string; last: number; base: number }>(spikeUsageSql(SCOPE_COLUMN[kind]));
      this.spikeStatements.set(kind, statement);
    }
    return statement;
  }

  /* ── reports ───────────────────────────────────────────────────────────── */

  async usageReport(query: UsageQuery): Promise<UsageRow[]> {
    const dimensions = typeof query.groupBy === 'string' ? [query.groupBy] : [...query.groupBy];
    // The rollup is only joined in when retention has put something in the range, so a report on
    // recent usage runs exactly the ledger-only query it always did.
    const withRollup = this.s.rollupInRange.get(query.from, query.to) !== undefined;
    const user = query.userId === undefined ? [] : [query.userId];
    const statement = this.db.prepare<unknown[], Record<string, string | number>>(usageSql(dimensions, withRollup, undefined, user.length > 0 ? '?' : null));
    let days: LocalDay[] = [];
    let found: Array<Record<string, string | number>>;
    if (dimensions.includes('day')) {
      days = localDays(query.from, query.to, query.timeZone);
      // Synchronous from fill to read, so no other report can see or change this connection's table.
      found = this.db.transaction(() => {
        this.db.exec('DELETE FROM temp.report_days');
        const insert = this.db.prepare('INSERT INTO temp.report_days (id, start_at, end_at) VALUES (?, ?, ?)');
        days.forEach((d, i) => insert.run(i, d.start, d.end));
        return withRollup ? statement.all(...user, ...user) : statement.all(...user);
      })();
    } else {
      const range = [query.from, query.to, ...user];
      found = withRollup ? statement.all(...range, ...range) : statement.all(...range);
    }
    return toUsageRows(found, dimensions, days);
  }

  async recentEntries(limit: number, userId?: string): Promise<LedgerEntry[]> {
    return (userId === undefined ? this.s.recentEntries.all(limit) : this.s.recentUserEntries.all(userId, limit)).map(toEntry);
  }

  /* ── alerts ──────────────────────────────────────────────────────────── */

  async dueDeliveries(now: number, limit: number): Promise<DueDelivery[]> {
    return this.s.dueDeliveries.all(now, limit).map((r) => ({ alert: JSON.parse(r.payload) as AlertEvent, channel: r.channel, attempts: r.attempts }));
  }

  async markDelivered(alertId: string, channel: string, now: number): Promise<void> {
    this.s.markDelivered.run(now, alertId, channel);
  }

  async markDeliveryFailed(alertId: string, channel: string, error: string, nextAttemptAt: number): Promise<void> {
    this.s.markFailed.run(error.slice(0, 2_000), nextAttemptAt, alertId, channel);
  }

  async retryDeliveries(alertId: string, now: number): Promise<number | null> {
    if (!this.s.alertExists.get(alertId)) return null;
    const pending = this.s.retryDeliveries.run(now, alertId).changes;
    if (pending > 0) this.alertsRecorded();
    return pending;
  }

  async listAlerts(query: AlertQuery): Promise<AlertRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (query.scope !== undefined) (where.push('a.scope = ?'), args.push(query.scope));
    if (query.kind !== undefined) (where.push('a.kind = ?'), args.push(query.kind));
    if (query.threshold !== undefined) (where.push('a.threshold = ?'), args.push(query.threshold));
    if (query.windowStart !== undefined) (where.push('a.window_start = ?'), args.push(query.windowStart));
    if (query.state !== undefined) {
      where.push(`EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.state = ?)`);
      args.push(query.state);
    }
    const rows = this.db
      .prepare<unknown[], { id: string; payload: string; window_start: number }>(
        `SELECT a.id, a.payload, a.window_start FROM alerts a ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY a.fired_at DESC, a.id LIMIT ?`,
      )
      .all(...args, query.limit);
    return rows.map((r) => ({
      alert: JSON.parse(r.payload) as AlertEvent,
      windowStart: r.window_start,
      deliveries: this.s.deliveriesOf.all(r.id).map(toDelivery),
    }));
  }

  /* ── meta ──────────────────────────────────────────────────────────────── */

  async getMeta(key: string): Promise<string | null> {
    return this.s.getMeta.get(key)?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.s.setMeta.run(key, value);
  }

  /* ── grants ────────────────────────────────────────────────────────────── */

  async createGrant(input: GrantInput, now: number): Promise<Grant> {
    const grant: Grant = { ...input, id: `grant_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`, createdAt: now };
    this.s.insertGrant.run({ ...grant, scope: formatScope(grant.scope) });
    // Only after the commit does admission see it (the next reserve, synchronously).
    this.remember(grant);
    return grant;
  }

  async listGrants(query: { scope?: string; activeAt?: number }): Promise<Grant[]> {
    const { scope, activeAt } = query;
    return this.s.listGrants
      .all()
      .map(toGrant)
      .filter((g) => (scope === undefined || formatScope(g.scope) === scope) && (activeAt === undefined || (g.startsAt <= activeAt && activeAt < g.endsAt)));
  }

  /* ── increase requests ─────────────────────────────────────────────────── */

  async createQuotaRequest(input: QuotaRequestInput, now: number, notice?: RequestNotice): Promise<Created<QuotaRequest>> {
    const request = newRequest(input, newId('req'), now);
    let alerted = false;
    const created = this.db.transaction((): Created<QuotaRequest> => {
      if (!this.s.getUser.get(input.userId)) return { ok: false, reason: 'missing-reference', field: 'userId' };
      if (this.requests.hasOpen(input.userId, input.budgetKey)) return { ok: false, reason: 'exists', field: 'budgetKey' };
      this.requests.insert(request);
      const event = notice?.(request, null);
      alerted = event != null && this.alerts.recordRequest(event, now);
      return { ok: true, value: request };
    })();
    if (alerted) this.alertsRecorded();
    return created;
  }

  async getQuotaRequest(id: string): Promise<QuotaRequest | null> {
    return this.requests.get(id);
  }

  async listQuotaRequests(query: { state?: QuotaRequestState; userId?: string }): Promise<QuotaRequest[]> {
    return this.requests.list(query.state ?? null, query.userId ?? null);
  }

  async decideQuotaRequest(id: string, decision: RequestDecision, now: number, notice?: RequestNotice): Promise<Decided> {
    let alerted = false;
    const result = this.db.transaction((): Decided => {
      const request = this.requests.get(id);
      if (!request) return { ok: false, reason: 'not-found' };
      if (request.state !== 'open') return { ok: false, reason: 'not-open', request };
      const grant = grantOf(request, decision, now);
      const after = decided(request, decision, grant, now);
      if (!this.requests.decide(after)) return { ok: false, reason: 'not-open', request };
      if (grant) this.s.insertGrant.run({ ...grant, scope: formatScope(grant.scope) });
      const event = notice?.(after, grant);
      alerted = event != null && this.alerts.recordRequest(event, now);
      return { ok: true, request: after, grant };
    })();
    // As createGrant: admission sees the grant only once it is committed.
    if (result.ok && result.grant) this.remember(result.grant);
    if (alerted) this.alertsRecorded();
    return result;
  }

  async unseenDecisions(userId: string): Promise<QuotaRequest[]> {
    return this.requests.unseen(userId);
  }

  async markRequestSeen(ids: readonly string[], now: number): Promise<string[]> {
    return this.db.transaction(() => this.requests.see(ids, now))();
  }

  private remember(grant: Grant): void {
    const list = this.grants.get(grant.budgetKey) ?? [];
    list.push(grant);
    this.grants.set(grant.budgetKey, list);
  }

  async claimMeta(key: string, value: string): Promise<string> {
    return this.db.transaction(() => {
      const stored = this.s.getMeta.get(key)?.value;
      if (stored !== undefined) return stored;
      this.s.setMeta.run(key, value);
      return value;
    })();
  }

  /**
   * Commits what is queued, then closes the file. The holds of requests still running stay in it,
   * to be settled at their last count by the next start (see orphanedHolds).
   */
  async close(): Promise<void> {
    this.flush();
    this.saveRateWindows();
    this.db.close();
  }

  /** The rate windows for the next start (see migration 9); a crash loses them, and a restart then starts them over. */
  private saveRateWindows(): void {
    const insert = this.db.prepare<[string, string, number, number, number]>('INSERT INTO rate_windows (scope, span, window_start, requests, tokens) VALUES (?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM rate_windows').run();
      for (const r of this.rateWindows.rows()) insert.run(r.scope, r.span, r.window_start, r.requests, r.tokens);
    })();
  }

  /**
   * For tests: every counter, stored or in memory, beside the ledger sum it must equal. A counter
   * in memory may have no row yet (nothing settled into it since it was first counted).
   */
  counterAudit(): Array<{ budgetKey: string; bucketStart: number; stored: Sums | null; cached: Sums | null; ledger: Sums }> {
    const rows = this.db
      .prepare<[], { budget_key: string; bucket_start: number; bucket_end: number | null; tokens: number; micros: number }>(
        'SELECT * FROM usage_counters',
      )
      .all();
    const all = new Map<string, { budgetKey: string; bucketStart: number; end: number | null; stored: Sums | null; cached: Sums | null }>();
    for (const r of rows) {
      all.set(`${r.budget_key}@${r.bucket_start}`, {
        budgetKey: r.budget_key,
        bucketStart: r.bucket_start,
        end: r.bucket_end,
        stored: { tokens: r.tokens, micros: r.micros },
        cached: null,
      });
    }
    for (const [id, c] of this.counterCache) {
      const at = id.lastIndexOf('@');
      const entry = all.get(id) ?? { budgetKey: id.slice(0, at), bucketStart: Number(id.slice(at + 1)), end: c.end, stored: null, cached: null };
      entry.cached = { tokens: c.tokens, micros: c.micros };
      all.set(id, entry);
    }
    return [...all.values()].map(({ end, ...e }) => ({
      ...e,
      ledger: this.ledgerSums(budgetOfKey(e.budgetKey), e.bucketStart, end),
    }));
  }
}

/**
 * `lq_model_matches(regexp, model)`: whether a budget that names models counts an entry's model
 * (the regular expression of modelsRegExpSource), for counting its usage from the ledger.
 */
function registerModelMatch(db: Db): void {
  const compiled = new Map<string, RegExp>();
  db.function('lq_model_matches', { deterministic: true }, (source: unknown, model: unknown) => {
    if (typeof source !== 'string' || typeof model !== 'string') return 0;
    let re = compiled.get(source);
    if (!re) {
      if (compiled.size >= 1_000) compiled.clear();
      compiled.set(source, (re = new RegExp(source)));
    }
    return re.test(model) ? 1 : 0;
  });
}

/** The scope and models a counter's budget key names (see budgetKey). */
function budgetOfKey(key: string): Pick<Budget, 'scope' | 'models'> {
  const bar = key.indexOf('|');
  const models = key.slice(bar + 1).split(' models=')[1];
  return { scope: parseScopeText(key.slice(0, bar)), models: models === undefined ? null : models.split(',') };
}

/** A `rate_limits` row as a setting (its scope text is one the admin API validated). */
function toRateSetting(row: { scope: string; limits: string; updated_at: number }): RateLimitSetting {
  const colon = row.scope.indexOf(':');
  const scope = { kind: row.scope.slice(0, colon), id: row.scope.slice(colon + 1) } as RateScope;
  return { scope, limits: JSON.parse(row.limits) as RateLimitOverride, updatedAt: row.updated_at };
}
