import type pg from 'pg';
import type { AlertEvent } from '../../alerts/alert-event.js';
import type { AlertOptions, BudgetMove } from '../../alerts/alert-planning.js';
import { detectSpikes, type SpikeConfig, type SubjectUsage } from '../../alerts/spikes.js';
import type { DefaultBudget } from '../../config/schema.js';
import { admit, type BudgetUsage } from '../../quota/admission.js';
import { resolveBudgets, type Budget } from '../../quota/budgets.js';
import { formatScope, scopesOf, type Scope } from '../../quota/scope.js';
import { bucketAt, bucketRetiresAt, bucketsAt, nextResetAt, windowPeriod } from '../../quota/window.js';
import { localDays } from '../sql/local-day.js';
import { SCOPE_COLUMN, spikeUsageArgs, spikeUsageSql } from '../sql/ledger-sql.js';
import { toBudget, toDelivery, toEntry, toKey, toProject, toUser, type BudgetRow, type DeliveryRow, type KeyRow, type LedgerRow, type ProjectRow, type UserRow } from '../sql/rows.js';
import { toUsageRows, usageSql } from '../sql/usage-sql.js';
import type {
  AlertQuery,
  AlertRecord,
  ApiKey,
  BudgetInput,
  BudgetState,
  Created,
  DueDelivery,
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
import { PgAlertRecorder } from './pg-alert-recorder.js';
import { createPool, inTransaction, numbered, query, withClient, type PgConnectionOptions, type Tx } from './pg-pool.js';

export interface PostgresStoreOptions extends PgConnectionOptions {
  defaultBudgets: readonly DefaultBudget[];
  defaultThresholds: number[];
  alerts?: AlertOptions;
  /** This process, as its holds and heartbeats name it. */
  instanceId: string;
  /** An instance whose last heartbeat is older than this is gone: any instance releases its holds. */
  instanceTimeoutMs: number;
}

interface Sums {
  tokens: number;
  micros: number;
}

/** A window's settled usage, and the counter of the bucket a settle at `now` adds to. */
interface WindowUsage extends Sums {
  /** Start of the oldest bucket with usage (rolling windows), for the reset time. */
  oldestUsed: number | null;
  current: { start: number; end: number | null; retiresAt: number | null; sums: Sums };
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

/** A budget row as rows.ts reads it ("window" is a keyword in PostgreSQL, so the column is window_spec). */
const BUDGET_COLUMNS = 'id, scope, window_spec AS "window", limit_tokens, limit_micros, thresholds, on_limit, downgrade_to';

/** Same slots as SQLite's retention (a quarter hour), so both stores roll up alike. */
const ROLLUP_SLOT_MS = 15 * 60_000;
const ROLLUP_BATCH = 5_000;
const HOUR_MS = 3_600_000;
/** A bucket that never ends (a total budget's) is counted up to here. */
const END_OF_TIME = Number.MAX_SAFE_INTEGER;
/**
 * How long a claimed outbox delivery is another instance's: longer than any channel's timeout, so a
 * delivery is only taken again when the instance that claimed it died mid-send.
 */
const DELIVERY_LEASE_MS = 5 * 60_000;
/** Serialises the one-time cleanup when the config's default budgets changed. */
const DEFAULTS_LOCK = 0x6c71_6466; // 'lqdf'

const toHold = (r: HoldRow): Hold => ({
  id: r.id,
  subject: { userId: r.user_id, projectId: r.project_id, keyId: r.key_id },
  tokens: r.tokens,
  micros: r.micros,
  outputTokens: r.output_tokens,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});
/**
 * The store on PostgreSQL, for several instances behind a load balancer. Nothing that decides
 * admission is kept in memory: holds, counters and budgets are rows every instance reads.
 *
 * Admission across instances: a transaction that checks or changes the usage of a budget (reserve,
 * extend, settle, putBudget, deleteBudget) first locks the row of each scope involved in
 * `scope_locks` (the request's key, user, project and global) with SELECT … FOR UPDATE, in text
 * order, so two transactions never wait on each other in a cycle. Every budget belongs to one
 * scope, so between that lock and COMMIT nobody else can add a hold or a settled entry to any of the
 * request's budgets, or change them: the budgets, counters and holds read next, the decision and
 * the writes are as atomic as SQLite's synchronous step, whichever instance the requests arrive
 * at. Reads (/quota) take no lock: they see the last committed state.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly alerts: PgAlertRecorder;
  /** Scope rows known to exist, so admission skips their INSERT … ON CONFLICT. */
  private readonly lockRows = new Set<string>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresStoreOptions,
  ) {
    this.alerts = new PgAlertRecorder(options.alerts ?? { channelsFor: () => [], projection: true });
  }

  /**
   * Connects, migrates (once across instances starting together), and drops the counters of config
   * defaults when the defaults changed, as SqliteStore.open does.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const pool = createPool(options);
    try {
      const client = await pool.connect();
      try {
        await migrate(client, options.schema);
      } finally {
        client.release();
      }
      const store = new PostgresStore(pool, options);
      await inTransaction(pool, async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [DEFAULTS_LOCK]);
        const fingerprint = JSON.stringify(options.defaultBudgets);
        const stored = await tx.query<{ value: string }>(`SELECT value FROM meta WHERE key = 'default_budgets'`);
        if (stored.rows[0]?.value !== fingerprint) {
          await tx.query(`DELETE FROM usage_counters WHERE budget_key NOT IN (SELECT scope || '|' || period FROM budgets)`);
          await tx.query(`INSERT INTO meta (key, value) VALUES ('default_budgets', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [fingerprint]);
        }
      });
      return store;
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** This instance is alive at `now`: its holds are not released for want of a heartbeat. */
  async heartbeat(now: number): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [this.options.instanceId, now],
    );
  }

  /** Throws when the database cannot answer (for /health). */
  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /* ── directory ─────────────────────────────────────────────────────────── */

  async createProject(project: { id: string; name: string }, now: number): Promise<Created<Project>> {
    const inserted = await query(this.pool, 'INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [
      project.id,
      project.name,
      now,
    ]);
    if (inserted.rowCount === 0) return { ok: false, reason: 'exists', field: 'id' };
    return { ok: true, value: { ...project, createdAt: now } };
  }

  async listProjects(): Promise<Project[]> {
    return (await query<ProjectRow>(this.pool, 'SELECT * FROM projects ORDER BY id')).rows.map(toProject);
  }

  async getProject(id: string): Promise<Project | null> {
    const row = (await query<ProjectRow>(this.pool, 'SELECT * FROM projects WHERE id = $1', [id])).rows[0];
    return row ? toProject(row) : null;
  }

  async createUser(user: { id: string; name: string; projectId: string | null }, now: number): Promise<Created<User>> {
    return inTransaction(this.pool, async (tx): Promise<Created<User>> => {
      if (user.projectId !== null && (await tx.query('SELECT 1 FROM projects WHERE id = $1', [user.projectId])).rowCount === 0) {
        return { ok: false, reason: 'missing-reference', field: 'projectId' };
      }
      const inserted = await tx.query('INSERT INTO users (id, name, project_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING', [
        user.id,
        user.name,
        user.projectId,
        now,
      ]);
      if (inserted.rowCount === 0) return { ok: false, reason: 'exists', field: 'id' };
      return { ok: true, value: { ...user, createdAt: now } };
    });
  }

  async listUsers(): Promise<User[]> {
    return (await query<UserRow>(this.pool, 'SELECT * FROM users ORDER BY id')).rows.map(toUser);
  }

  async getUser(id: string): Promise<User | null> {
    const row = (await query<UserRow>(this.pool, 'SELECT * FROM users WHERE id = $1', [id]))
      .rows[0];
    return row ? toUser(row) : null;
  }

  async createKey(
    key: { id: string; userId: string; name: string; service: boolean; secretHash: string; prefix: string },
    now: number,
  ): Promise<Created<ApiKey>> {
    return inTransaction(this.pool, async (tx): Promise<Created<ApiKey>> => {
      if ((await tx.query('SELECT 1 FROM users WHERE id = $1', [key.userId])).rowCount === 0) return { ok: false, reason: 'missing-reference', field: 'userId' };
      await tx.query('INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, service, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        key.id,
        key.userId,
        key.name,
        key.prefix,
        key.secretHash,
        key.service,
        now,
      ]);
      return {
        ok: true,
        value: { id: key.id, userId: key.userId, name: key.name, prefix: key.prefix, service: key.service, createdAt: now, revokedAt: null },
      };
    });
  }

  async listKeys(userId?: string): Promise<ApiKey[]> {
    const found =
      userId === undefined
        ? await query<KeyRow>(this.pool, 'SELECT * FROM api_keys ORDER BY created_at, id')
        : await query<KeyRow>(this.pool, 'SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at, id', [userId]);
    return found.rows.map(toKey);
  }

  async getKey(id: string): Promise<ApiKey | null> {
    const row = (await query<KeyRow>(this.pool, 'SELECT * FROM api_keys WHERE id = $1', [id])).rows[0];
    return row ? toKey(row) : null;
  }

  /** Not cached: a key revoked through another instance must stop working here at once. */
  async findKeyByHash(secretHash: string): Promise<KeyIdentity | null> {
    const row = (
      await query<KeyRow & { user_name: string; project_id: string | null; user_created_at: number }>(
        this.pool,
        `SELECT k.*, u.name AS user_name, u.project_id, u.created_at AS user_created_at
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = $1 AND k.revoked_at IS NULL`,
        [secretHash],
      )
    ).rows[0];
    if (!row) return null;
    return { key: toKey(row), user: { id: row.user_id, name: row.user_name, projectId: row.project_id, createdAt: row.user_created_at } };
  }

  async revokeKey(id: string, now: number): Promise<ApiKey | null> {
    await query(this.pool, 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id]);
    return this.getKey(id);
  }

  /* ── budgets ───────────────────────────────────────────────────────────── */

  async putBudget(input: BudgetInput, now: number): Promise<{ budget: Budget; created: boolean }> {
    const scope = formatScope(input.scope);
    const period = windowPeriod(input.window);
    return inTransaction(this.pool, async (tx) => {
      // Under the scope's lock: no admission or settle of it runs while its counters are dropped.
      await this.lockScopes(tx, [input.scope]);
      const existing = (await tx.query<{ id: string }>('SELECT id FROM budgets WHERE scope = $1 AND period = $2', [scope, period])).rows[0];
      const id = existing?.id ?? `bud_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
      const row = (
        await tx.query<BudgetRow>(
          `INSERT INTO budgets (id, scope, period, window_spec, limit_tokens, limit_micros, thresholds, on_limit, downgrade_to, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
           ON CONFLICT (scope, period) DO UPDATE SET window_spec = excluded.window_spec, limit_tokens = excluded.limit_tokens,
             limit_micros = excluded.limit_micros, thresholds = excluded.thresholds, on_limit = excluded.on_limit,
             downgrade_to = excluded.downgrade_to, updated_at = excluded.updated_at
           RETURNING ${BUDGET_COLUMNS}`,
          [
            id,
            scope,
            period,
            JSON.stringify(input.window),
            input.limitTokens,
            input.limitMicros,
            input.thresholds === null ? null : JSON.stringify(input.thresholds),
            input.onLimit,
            input.downgradeTo,
            now,
          ],
        )
      ).rows[0] as BudgetRow;
      // The window may have moved (another time zone): counters are counted again from the ledger.
      await tx.query('DELETE FROM usage_counters WHERE budget_key = $1', [`${scope}|${period}`]);
      return { budget: this.toBudget(row), created: existing === undefined };
    });
  }

  async listBudgets(): Promise<Budget[]> {
    return (await query<BudgetRow>(this.pool, `SELECT ${BUDGET_COLUMNS} FROM budgets ORDER BY scope, period`)).rows.map((r) => this.toBudget(r));
  }

  async deleteBudget(id: string): Promise<Budget | null> {
    return inTransaction(this.pool, async (tx) => {
      const row = (await tx.query<BudgetRow>(`SELECT ${BUDGET_COLUMNS} FROM budgets WHERE id = $1`, [id])).rows[0];
      if (!row) return null;
      const budget = this.toBudget(row);
      await this.lockScopes(tx, [budget.scope]);
      await tx.query('DELETE FROM budgets WHERE id = $1', [id]);
      await tx.query('DELETE FROM usage_counters WHERE budget_key = $1', [budget.key]);
      return budget;
    });
  }

  private toBudget(row: BudgetRow): Budget {
    return toBudget(row, this.options.defaultThresholds);
  }

  /** Budgets of these scopes, stored ones read fresh (another instance may have just changed them). */
  private async budgetsFor(db: Tx, scopes: readonly Scope[]): Promise<Budget[]> {
    const stored = await db.query<BudgetRow>(`SELECT ${BUDGET_COLUMNS} FROM budgets WHERE scope = ANY($1) ORDER BY scope, period`, [scopes.map(formatScope)]);
    return resolveBudgets(
      scopes,
      stored.rows.map((r) => this.toBudget(r)),
      this.options.defaultBudgets,
      this.options.defaultThresholds,
    );
  }

  /**
   * Locks the rows of these scopes, in text order, until the transaction ends (see the class
   * comment). A scope's row is created the first time it is seen.
   */
  private async lockScopes(tx: Tx, scopes: readonly Scope[]): Promise<void> {
    const names = [...new Set(scopes.map(formatScope))].sort();
    const lock = () => tx.query('SELECT scope FROM scope_locks WHERE scope = ANY($1) ORDER BY scope FOR UPDATE', [names]);
    const create = () => tx.query('INSERT INTO scope_locks (scope) SELECT s FROM unnest($1::text[]) AS s ORDER BY s ON CONFLICT DO NOTHING', [names]);
    if (names.some((n) => !this.lockRows.has(n))) await create();
    let locked = await lock();
    if ((locked.rowCount ?? 0) < names.length) {
      await create();
      locked = await lock();
    }
    for (const n of names) this.lockRows.add(n);
  }

  /* ── counters ──────────────────────────────────────────────────────────── */

  /**
   * Settled usage of each budget's window at `now`: its counter rows, and for buckets without one,
   * sums from the ledger (and rollup) stored as new counters. Storing a counted bucket is safe
   * without the budget's lock: every settle into it holds that lock, so the ledger for it does not
   * move except by a settle that adds to the stored row (ON CONFLICT keeps whichever came first).
   */
  private async windowUsages(db: Tx, budgets: readonly Budget[], now: number, reserved?: Map<string, Sums>): Promise<WindowUsage[]> {
    const wanted = budgets.map((budget) => ({ budget, buckets: bucketsAt(budget.window, now) }));
    const keys: string[] = [];
    const starts: number[] = [];
    for (const { budget, buckets } of wanted) for (const b of buckets) (keys.push(budget.key), starts.push(b.start));
    const stored = new Map<string, Sums>();
    if (keys.length > 0) {
      // With `reserved`, what live holds set aside per budget comes back in the same round trip
      // (rows with a null bucket).
      const rows = await db.query<{ budget_key: string; bucket_start: number | null; tokens: number; micros: number }>(
        `SELECT c.budget_key, c.bucket_start, c.tokens, c.micros FROM usage_counters c
         JOIN unnest($1::text[], $2::bigint[]) AS w(k, s) ON c.budget_key = w.k AND c.bucket_start = w.s
         ${reserved ? 'UNION ALL SELECT budget_key, NULL, SUM(tokens), SUM(micros) FROM hold_budgets WHERE budget_key = ANY($1) GROUP BY budget_key' : ''}`,
        [keys, starts],
      );
      for (const r of rows.rows) {
        if (r.bucket_start === null) reserved?.set(r.budget_key, { tokens: r.tokens, micros: r.micros });
        else stored.set(`${r.budget_key}@${r.bucket_start}`, { tokens: r.tokens, micros: r.micros });
      }
    }
    const seeds = { keys: [] as string[], starts: [] as number[], ends: [] as Array<number | null>, retires: [] as Array<number | null>, tokens: [] as number[], micros: [] as number[] };
    const result: WindowUsage[] = [];
    for (const { budget, buckets } of wanted) {
      const missing = buckets.filter((b) => !stored.has(`${budget.key}@${b.start}`));
      if (missing.length > 0) {
        const counted = await this.ledgerSums(db, budget.scope, missing);
        missing.forEach((b, i) => {
          const sums = counted[i] as Sums;
          stored.set(`${budget.key}@${b.start}`, sums);
          seeds.keys.push(budget.key);
          seeds.starts.push(b.start);
          seeds.ends.push(b.end);
          seeds.retires.push(bucketRetiresAt(budget.window, b));
          seeds.tokens.push(sums.tokens);
          seeds.micros.push(sums.micros);
        });
      }
      const bucket = bucketAt(budget.window, now);
      const current = { start: bucket.start, end: bucket.end, retiresAt: bucketRetiresAt(budget.window, bucket), sums: stored.get(`${budget.key}@${bucket.start}`) as Sums };
      const usage: WindowUsage = { tokens: 0, micros: 0, oldestUsed: null, current };
      for (const b of buckets) {
        const sums = stored.get(`${budget.key}@${b.start}`) as Sums;
        usage.tokens += sums.tokens;
        usage.micros += sums.micros;
        if (usage.oldestUsed === null && (sums.tokens > 0 || sums.micros > 0)) usage.oldestUsed = b.start;
      }
      if (budget.window.kind !== 'rolling') usage.oldestUsed = null;
      result.push(usage);
    }
    if (seeds.keys.length > 0) {
      await db.query(
        `INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) ON CONFLICT DO NOTHING`,
        [seeds.keys, seeds.starts, seeds.ends, seeds.retires, seeds.tokens, seeds.micros],
      );
    }
    return result;
  }

  /** Ledger plus rollup sums of one scope over each bucket, in one statement. */
  private async ledgerSums(db: Tx, scope: Scope, buckets: ReadonlyArray<{ start: number; end: number | null }>): Promise<Sums[]> {
    const column = scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind];
    const where = (at: string) => `${column === null ? '' : `${column} = $3 AND `}${at} >= b.s AND ${at} < b.e`;
    const rows = await db.query<{ i: number; tokens: number; micros: number }>(
      `SELECT b.i, x.tokens, x.micros FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS b(s, e, i)
       CROSS JOIN LATERAL (
         SELECT SUM(tokens) AS tokens, SUM(micros) AS micros FROM (
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS tokens, COALESCE(SUM(cost_micros), 0) AS micros FROM ledger WHERE ${where('at')}
           UNION ALL
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM ledger_rollup WHERE ${where('slot_at')}) AS parts
       ) AS x ORDER BY b.i`,
      [buckets.map((b) => b.start), buckets.map((b) => b.end ?? END_OF_TIME), ...(scope.kind === 'global' ? [] : [scope.id])],
    );
    return rows.rows.map((r) => ({ tokens: r.tokens, micros: r.micros }));
  }

  private async statesOf(db: Tx, budgets: readonly Budget[], now: number): Promise<{ states: BudgetState[]; used: WindowUsage[] }> {
    const reserved = new Map<string, Sums>();
    const used = await this.windowUsages(db, budgets, now, reserved);
    const states = budgets.map((budget, i): BudgetState => {
      const u = used[i] as WindowUsage;
      const r = reserved.get(budget.key);
      const usage: BudgetUsage = { usedTokens: u.tokens, usedMicros: u.micros, reservedTokens: r?.tokens ?? 0, reservedMicros: r?.micros ?? 0 };
      return { budget, usage, resetsAt: nextResetAt(budget.window, now, u.oldestUsed) };
    });
    return { states, used };
  }

  async budgetStates(scopes: Scope[], now: number): Promise<BudgetState[]> {
    return withClient(this.pool, async (db) => (await this.statesOf(db, await this.budgetsFor(db, scopes), now)).states);
  }

  /* ── holds and settlement ──────────────────────────────────────────────── */

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const { subject, quote, now } = request;
    return inTransaction(this.pool, async (tx): Promise<ReserveResult> => {
      const scopes = scopesOf(subject);
      await this.lockScopes(tx, scopes);
      const budgets = await this.budgetsFor(tx, scopes);
      const { states } = await this.statesOf(tx, budgets, now);
      const decision = admit(states, quote);
      if (!decision.ok) return { ok: false, blocking: states[decision.blockingIndex] as BudgetState, budgets: states };
      const hold: Hold = {
        id: request.holdId,
        subject,
        tokens: decision.tokens,
        micros: decision.micros,
        outputTokens: decision.outputTokens,
        createdAt: now,
        expiresAt: now + request.ttlMs,
      };
      // The hold and what it sets aside per budget, in one statement.
      const inserted = await tx.query<{ inserted: number }>(
        `WITH hold AS (
           INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING RETURNING id
         ), per_budget AS (
           INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros) SELECT hold.id, k, $6, $7 FROM hold, unnest($11::text[]) AS k
         )
         SELECT COUNT(*) AS inserted FROM hold`,
        [
          hold.id,
          this.options.instanceId,
          subject.userId,
          subject.projectId,
          subject.keyId,
          hold.tokens,
          hold.micros,
          hold.outputTokens,
          now,
          hold.expiresAt,
          [...new Set(budgets.map((b) => b.key))],
        ],
      );
      if (inserted.rows[0]?.inserted !== 1) throw new Error(`hold ${request.holdId} already exists`);
      for (const state of states) {
        state.usage.reservedTokens += decision.tokens;
        state.usage.reservedMicros += decision.micros;
      }
      return { ok: true, hold, budgets: states, outputRoom: decision.outputRoom };
    });
  }

  /** Records what a hold sets aside against each budget (growing what it already had). */
  private async addToHold(tx: Tx, holdId: string, budgetKeys: readonly string[], amount: Sums): Promise<void> {
    if (budgetKeys.length === 0) return;
    await tx.query(
      `INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros) SELECT $1, k, $3, $4 FROM unnest($2::text[]) AS k
       ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = hold_budgets.tokens + excluded.tokens, micros = hold_budgets.micros + excluded.micros`,
      [holdId, [...new Set(budgetKeys)], amount.tokens, amount.micros],
    );
  }

  async extend(holdId: string, amount: { tokens: number; micros: number }, now: number, ttlMs: number): Promise<ExtendResult> {
    return inTransaction(this.pool, async (tx): Promise<ExtendResult> => {
      const before = (await tx.query<HoldRow>('SELECT * FROM holds WHERE id = $1', [holdId])).rows[0];
      if (!before) return { ok: false, reason: 'unknown-hold' };
      const scopes = scopesOf(toHold(before).subject);
      await this.lockScopes(tx, scopes);
      const budgets = await this.budgetsFor(tx, scopes);
      const { states } = await this.statesOf(tx, budgets, now);
      const decision = admit(states, { tokens: amount.tokens, micros: amount.micros });
      if (!decision.ok) return { ok: false, reason: 'exceeded', blocking: states[decision.blockingIndex] as BudgetState };
      // Released or expired while this waited for the lock: nothing to grow.
      const grown = (
        await tx.query<HoldRow>(
          `UPDATE holds SET tokens = tokens + $2, micros = micros + $3, output_tokens = output_tokens + $2, expires_at = $4 WHERE id = $1 RETURNING *`,
          [holdId, amount.tokens, amount.micros, now + ttlMs],
        )
      ).rows[0];
      if (!grown) return { ok: false, reason: 'unknown-hold' };
      // A budget created while the request ran joins the hold from here on.
      await this.addToHold(
        tx,
        holdId,
        budgets.map((b) => b.key),
        amount,
      );
      return { ok: true, hold: toHold(grown) };
    });
  }

  /**
   * One transaction per settle: under the budgets' locks, the entry (unique per request, so a second
   * settle finds the first), the counters of the bucket at `now`, the alerts it fires, and the hold
   * gone. Durable when the promise resolves.
   */
  async settle(request: SettleRequest): Promise<SettleResult> {
    const { holdId, subject, usage, now } = request;
    return inTransaction(this.pool, async (tx): Promise<SettleResult> => {
      const scopes = scopesOf(subject);
      await this.lockScopes(tx, scopes);
      const budgets = await this.budgetsFor(tx, scopes);
      const used = await this.windowUsages(tx, budgets, now);
      // Unique per request: a second settle of it (on any instance) finds the first under the lock.
      const row = (
        await tx.query<LedgerRow>(
          `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
             reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
           ON CONFLICT (request_id) DO NOTHING RETURNING *`,
          [
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
          ],
        )
      ).rows[0];
      if (!row) {
        const previous = (await tx.query<LedgerRow>('WITH gone AS (DELETE FROM holds WHERE id = $1) SELECT * FROM ledger WHERE request_id = $1', [holdId])).rows[0];
        return { entry: toEntry(previous as LedgerRow), duplicate: true };
      }
      const added = { tokens: usage.inputTokens + usage.outputTokens, micros: usage.costMicros };
      // The counters of the bucket at `now`, and the hold gone, in one statement. A counter normally
      // exists (windowUsages stored every bucket it read) and is added to; one deleted meanwhile (its
      // window retired by an instance whose clock is ahead, or counters dropped at a start with
      // other defaults) is written again whole, so no increment is ever lost.
      await tx.query(
        `WITH counted AS (
           INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
           ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = usage_counters.tokens + $7, micros = usage_counters.micros + $8
         )
         DELETE FROM holds WHERE id = $9`,
        [
          budgets.map((b) => b.key),
          used.map((u) => u.current.start),
          used.map((u) => u.current.end),
          used.map((u) => u.current.retiresAt),
          used.map((u) => u.current.sums.tokens + added.tokens),
          used.map((u) => u.current.sums.micros + added.micros),
          added.tokens,
          added.micros,
          holdId,
        ],
      );
      // Alerts are written with the usage that caused them: both commit, or neither.
      if (added.tokens > 0 || added.micros > 0) {
        for (const [i, budget] of budgets.entries()) {
          const u = used[i] as WindowUsage;
          const move: BudgetMove = { budget, before: { tokens: u.tokens, micros: u.micros }, added, oldestUsed: u.oldestUsed, now };
          await this.alerts.record(tx, move);
        }
      }
      return { entry: toEntry(row), duplicate: false };
    });
  }

  async renew(holdId: string, now: number, ttlMs: number): Promise<boolean> {
    const renewed = await query(this.pool, 'UPDATE holds SET expires_at = GREATEST(expires_at, $2) WHERE id = $1', [holdId, now + ttlMs]);
    return (renewed.rowCount ?? 0) > 0;
  }

  async release(holdId: string): Promise<boolean> {
    const deleted = await query(this.pool, 'DELETE FROM holds WHERE id = $1', [holdId]);
    return (deleted.rowCount ?? 0) > 0;
  }

  /**
   * Releases holds not renewed in time, and every hold of an instance whose heartbeat stopped (it
   * died with its requests); any instance may run this. Retired counters go too.
   */
  async expireHolds(now: number): Promise<number> {
    return inTransaction(this.pool, async (tx) => {
      await tx.query('DELETE FROM usage_counters WHERE retires_at <= $1', [now]);
      const silentSince = now - this.options.instanceTimeoutMs;
      const expired = await tx.query(
        'DELETE FROM holds WHERE expires_at <= $1 OR instance_id IN (SELECT id FROM instances WHERE heartbeat_at <= $2 AND id <> $3)',
        [now, silentSince, this.options.instanceId],
      );
      await tx.query('DELETE FROM instances WHERE heartbeat_at <= $1 AND id <> $2', [silentSince, this.options.instanceId]);
      return expired.rowCount ?? 0;
    });
  }

  async listHolds(): Promise<Hold[]> {
    return (await query<HoldRow>(this.pool, 'SELECT * FROM holds ORDER BY created_at, id')).rows.map(toHold);
  }

  /* ── retention ─────────────────────────────────────────────────────────── */

  /**
   * SQLite's retention, one batch per statement: the oldest entries before the cutoff are deleted
   * and summed into ledger_rollup by the same statement, so the rows summed are exactly the rows
   * removed. SKIP LOCKED lets two instances run it at once without taking the same rows.
   */
  async rollUpLedger(before: number, batchSize = ROLLUP_BATCH): Promise<number> {
    const cutoff = Math.floor(before / ROLLUP_SLOT_MS) * ROLLUP_SLOT_MS;
    let total = 0;
    for (;;) {
      const moved = (
        await query<{ moved: number }>(
          this.pool,
          `WITH moved AS (
             DELETE FROM ledger WHERE id IN (SELECT id FROM ledger WHERE at < $1 ORDER BY at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros, latency_ms
           ), rolled AS (
             INSERT INTO ledger_rollup (slot_at, user_id, project_id, key_id, model, requests, input_tokens, output_tokens,
               cached_tokens, reasoning_tokens, cost_micros, latency_ms)
             SELECT (at / ${ROLLUP_SLOT_MS}) * ${ROLLUP_SLOT_MS}, user_id, COALESCE(project_id, ''), key_id, model, COUNT(*), SUM(input_tokens),
               SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_micros), SUM(latency_ms)
             FROM moved GROUP BY 1, 2, 3, 4, 5
             ON CONFLICT (slot_at, user_id, project_id, key_id, model) DO UPDATE SET requests = ledger_rollup.requests + excluded.requests,
               input_tokens = ledger_rollup.input_tokens + excluded.input_tokens, output_tokens = ledger_rollup.output_tokens + excluded.output_tokens,
               cached_tokens = ledger_rollup.cached_tokens + excluded.cached_tokens,
               reasoning_tokens = ledger_rollup.reasoning_tokens + excluded.reasoning_tokens,
               cost_micros = ledger_rollup.cost_micros + excluded.cost_micros, latency_ms = ledger_rollup.latency_ms + excluded.latency_ms
             RETURNING 1
           )
           SELECT COUNT(*) AS moved FROM moved`,
          [cutoff, batchSize],
        )
      ).rows[0]?.moved as number;
      total += moved;
      if (moved < batchSize) return total;
    }
  }

  /* ── spike detection ───────────────────────────────────────────────────── */

  async recordSpikes(now: number, config: SpikeConfig): Promise<AlertEvent[]> {
    if (!config.enabled) return [];
    const hourAgo = now - HOUR_MS;
    const from = hourAgo - config.baselineHours * HOUR_MS;
    const usage: SubjectUsage[] = [];
    for (const kind of ['user', 'project', 'key'] as const) {
      const rows = await query<{ id: string; last: number; base: number }>(
        this.pool,
        numbered(spikeUsageSql(SCOPE_COLUMN[kind])),
        spikeUsageArgs(hourAgo, from, now + 1, config.minTokens),
      );
      for (const r of rows.rows) usage.push({ scope: `${kind}:${r.id}`, lastHourTokens: r.last, baselineTokens: r.base });
    }
    const spikes = detectSpikes(usage, config);
    if (spikes.length === 0) return [];
    return inTransaction(this.pool, async (tx) => {
      const fired: AlertEvent[] = [];
      for (const spike of spikes) {
        const event = await this.alerts.recordAnomaly(tx, spike, config, now);
        if (event) fired.push(event);
      }
      return fired;
    });
  }

  /* ── reports ───────────────────────────────────────────────────────────── */

  async usageReport(q: UsageQuery): Promise<UsageRow[]> {
    const dimensions = typeof q.groupBy === 'string' ? [q.groupBy] : [...q.groupBy];
    return withClient(this.pool, async (db) => {
      const withRollup = ((await db.query('SELECT 1 FROM ledger_rollup WHERE slot_at >= $1 AND slot_at < $2 LIMIT 1', [q.from, q.to])).rowCount ?? 0) > 0;
      const byDay = dimensions.includes('day');
      const days = byDay ? localDays(q.from, q.to, q.timeZone) : [];
      const found = byDay
        ? await db.query<Record<string, string | number>>(usageSql(dimensions, withRollup, 'unnest($1::int[], $2::bigint[], $3::bigint[]) AS d(id, start_at, end_at)'), [
            days.map((_, i) => i),
            days.map((d) => d.start),
            days.map((d) => d.end),
          ])
        : await db.query<Record<string, string | number>>(numbered(usageSql(dimensions, withRollup)), withRollup ? [q.from, q.to, q.from, q.to] : [q.from, q.to]);
      return toUsageRows(found.rows, dimensions, days);
    });
  }

  async recentEntries(limit: number): Promise<LedgerEntry[]> {
    return (await query<LedgerRow>(this.pool, 'SELECT * FROM ledger ORDER BY id DESC LIMIT $1', [limit])).rows.map(toEntry);
  }

  /* ── alerts ──────────────────────────────────────────────────────────── */

  /**
   * Claims what is due for this instance: a lease on each delivery (FOR UPDATE SKIP LOCKED, so two
   * instances polling at once take different rows), which markDelivered/markDeliveryFailed end.
   * Another instance only takes a delivery again once its lease ran out unanswered.
   */
  async dueDeliveries(now: number, limit: number): Promise<DueDelivery[]> {
    const rows = await query<{ payload: string; channel: string; attempts: number; fired_at: number; alert_id: string }>(
      this.pool,
      `UPDATE alert_deliveries d SET lease_until = $3
       FROM (SELECT d2.alert_id, d2.channel FROM alert_deliveries d2 JOIN alerts a2 ON a2.id = d2.alert_id
             WHERE d2.state = 'pending' AND d2.next_attempt_at <= $1 AND (d2.lease_until IS NULL OR d2.lease_until <= $1)
             ORDER BY a2.fired_at, a2.id, d2.channel LIMIT $2 FOR UPDATE OF d2 SKIP LOCKED) due, alerts a
       WHERE d.alert_id = due.alert_id AND d.channel = due.channel AND a.id = d.alert_id
       RETURNING a.payload, d.channel, d.attempts, a.fired_at, d.alert_id`,
      [now, limit, now + DELIVERY_LEASE_MS],
    );
    return rows.rows
      .sort((x, y) => x.fired_at - y.fired_at || (x.alert_id < y.alert_id ? -1 : x.alert_id > y.alert_id ? 1 : x.channel < y.channel ? -1 : 1))
      .map((r) => ({ alert: JSON.parse(r.payload) as AlertEvent, channel: r.channel, attempts: r.attempts }));
  }

  async markDelivered(alertId: string, channel: string, now: number): Promise<void> {
    await query(
      this.pool,
      `UPDATE alert_deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL, lease_until = NULL
       WHERE alert_id = $2 AND channel = $3 AND state = 'pending'`,
      [now, alertId, channel],
    );
  }

  async markDeliveryFailed(alertId: string, channel: string, error: string, nextAttemptAt: number): Promise<void> {
    await query(
      this.pool,
      `UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, lease_until = NULL
       WHERE alert_id = $3 AND channel = $4 AND state = 'pending'`,
      [error.slice(0, 2_000), nextAttemptAt, alertId, channel],
    );
  }

  async listAlerts(q: AlertQuery): Promise<AlertRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      args.push(value);
      where.push(clause.replace('?', `$${args.length}`));
    };
    if (q.scope !== undefined) add('a.scope = ?', q.scope);
    if (q.kind !== undefined) add('a.kind = ?', q.kind);
    if (q.threshold !== undefined) add('a.threshold = ?', q.threshold);
    if (q.windowStart !== undefined) add('a.window_start = ?', q.windowStart);
    if (q.state !== undefined) add('EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.state = ?)', q.state);
    args.push(q.limit);
    return withClient(this.pool, async (db) => {
      const alerts = await db.query<{ id: string; payload: string; window_start: number }>(
        `SELECT a.id, a.payload, a.window_start FROM alerts a ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY a.fired_at DESC, a.id LIMIT $${args.length}`,
        args,
      );
      const deliveries = await db.query<DeliveryRow & { alert_id: string }>('SELECT * FROM alert_deliveries WHERE alert_id = ANY($1) ORDER BY channel', [alerts.rows.map((a) => a.id)]);
      return alerts.rows.map((r) => ({
        alert: JSON.parse(r.payload) as AlertEvent,
        windowStart: r.window_start,
        deliveries: deliveries.rows
          .filter((d) => d.alert_id === r.id)
          .map(toDelivery),
      }));
    });
  }

  /* ── meta ──────────────────────────────────────────────────────────────── */

  async getMeta(key: string): Promise<string | null> {
    return (await query<{ value: string }>(this.pool, 'SELECT value FROM meta WHERE key = $1', [key])).rows[0]?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await query(this.pool, 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async claimMeta(key: string, value: string): Promise<string> {
    // DO UPDATE with no change, so RETURNING gives the row whether this call wrote it or not.
    const row = await query<{ value: string }>(
      this.pool,
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value',
      [key, value],
    );
    return row.rows[0]?.value as string;
  }

  /**
   * Leaves the cluster: this instance's holds (of requests cut by the shutdown) and its heartbeat
   * row go at once, rather than when the others notice the silence.
   */
  async close(): Promise<void> {
    try {
      await inTransaction(this.pool, async (tx) => {
        await tx.query('DELETE FROM holds WHERE instance_id = $1', [this.options.instanceId]);
        await tx.query('DELETE FROM instances WHERE id = $1', [this.options.instanceId]);
      });
    } catch (error) {
      console.error('[lobe-quota] could not release this instance’s holds on close:', (error as Error).message);
    } finally {
      await this.pool.end();
    }
  }

  /**
   * For tests: every stored counter beside the ledger sum it must equal. Nothing is kept in memory:
   * the copy admission reads (`cached`, in SqliteStore's terms) is the row itself.
   */
  async counterAudit(): Promise<Array<{ budgetKey: string; bucketStart: number; stored: Sums | null; cached: Sums | null; ledger: Sums }>> {
    // One statement: a scope is the budget key up to its last '|' (a period never contains one).
    const scopeMatches = `(s.scope = 'global' OR s.scope = 'user:' || l.user_id OR s.scope = 'project:' || l.project_id OR s.scope = 'key:' || l.key_id)`;
    const rows = await query<{ budget_key: string; bucket_start: number; tokens: number; micros: number; ledger_tokens: number; ledger_micros: number }>(
      this.pool,
      `SELECT c.budget_key, c.bucket_start, c.tokens, c.micros, x.tokens AS ledger_tokens, x.micros AS ledger_micros
       FROM usage_counters c CROSS JOIN LATERAL (SELECT substring(c.budget_key FROM '^(.*)\\|[^|]*$') AS scope) s
       CROSS JOIN LATERAL (
         SELECT SUM(t) AS tokens, SUM(m) AS micros FROM (
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS t, COALESCE(SUM(cost_micros), 0) AS m FROM ledger l
           WHERE l.at >= c.bucket_start AND l.at < COALESCE(c.bucket_end, $1) AND ${scopeMatches}
           UNION ALL
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM ledger_rollup l
           WHERE l.slot_at >= c.bucket_start AND l.slot_at < COALESCE(c.bucket_end, $1) AND ${scopeMatches}) AS parts
       ) AS x ORDER BY c.budget_key, c.bucket_start`,
      [END_OF_TIME],
    );
    return rows.rows.map((r) => {
      const stored = { tokens: r.tokens, micros: r.micros };
      return { budgetKey: r.budget_key, bucketStart: r.bucket_start, stored, cached: stored, ledger: { tokens: r.ledger_tokens, micros: r.ledger_micros } };
    });
  }
}
