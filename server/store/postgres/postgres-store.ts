import type pg from 'pg';
import type { AlertEvent } from '../../alerts/alert-event.js';
import { overrunAlertKey, planBudgetAlerts, type AlertOptions, type BudgetMove } from '../../alerts/alert-planning.js';
import { detectSpikes, type SpikeConfig, type SubjectUsage } from '../../alerts/spikes.js';
import type { DefaultBudget } from '../../config/schema.js';
import { admit, type Admission, type BudgetUsage } from '../../quota/admission.js';
import { budgetPeriod, budgetsForModel, resolveBudgets, withGrants, type Budget } from '../../quota/budgets.js';
import { formatScope, scopesOf, scopesOfKey, type RequestSubject, type Route, type Scope } from '../../quota/scope.js';
import {
  decideRates,
  formatRateScope,
  rateScopesOf,
  type RateLimited,
  type RateLimitOverride,
  type RateLimitSetting,
  type RateScope,
} from '../../quota/rate-limits.js';
import { nextResetAt } from '../../quota/window.js';
import { localDays } from '../sql/local-day.js';
import { SCOPE_COLUMN, spikeUsageArgs, spikeUsageSql } from '../sql/ledger-sql.js';
import {
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
  type GrantRow,
  type DeliveryRow,
  type KeyRow,
  type LedgerRow,
  type ProjectRow,
  type UserRow,
  type UserWithIdsRow,
} from '../sql/rows.js';
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
  ExternalIdChange,
  Decided,
  Grant,
  GrantInput,
  QuotaRequest,
  QuotaRequestInput,
  QuotaRequestState,
  RequestDecision,
  RequestNotice,
  Hold,
  KeyIdentity,
  KeyStates,
  LedgerEntry,
  OrphanedHold,
  PendingCharge,
  Project,
  RefusalStyle,
  BudgetReserveResult,
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
import { StoreUnavailableError } from '../store-unavailable.js';
import { migrate } from './migrations.js';
import { PgAlertRecorder } from './pg-alert-recorder.js';
import { decideRequest, getRequest, insertRequest, listRequests, seeRequests, unseenRequests } from './pg-quota-requests.js';
import { decided, grantOf, newRequest } from '../sql/request-decision.js';
import { newId } from '../../auth/secrets.js';
import { meteringArgs, quoteArg, reservationsOf, windowUsagesOf, type Sums, type WindowUsage } from './metering-args.js';
import { columnParameters, meterColumns, settleColumns, type BatchItem, type MeterFields } from './metering-columns.js';
import { meterAnswers, settleAnswers, type MeteringAnswer } from './batch-answers.js';
import { CallBatcher } from './call-batcher.js';
import { applyOnce, createPool, inTransaction, numbered, query, queryConfig, withClient, type PgConnectionOptions, type Prepared, type Statement, type Tx } from './pg-pool.js';

export interface PostgresStoreOptions extends PgConnectionOptions {
  defaultBudgets: readonly DefaultBudget[];
  defaultThresholds: number[];
  alerts?: AlertOptions;
  /** This process, as its holds and heartbeats name it. */
  instanceId: string;
  /**
   * An instance whose last heartbeat is older than this is gone: any instance releases its holds,
   * or takes over those that carry a pending charge, to settle them (see orphanedHolds).
   */
  instanceTimeoutMs: number;
}

/** Whom a live hold is for, and where its request goes: the budgets its extensions are checked against. */
interface HeldFor {
  subject: RequestSubject;
  route: Route | undefined;
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
  /** JSON PendingCharge; null for a hold that is released, never recovered (migration 3). */
  pending: string | null;
  delivered_tokens: number;
  updated_at: number;
  /** When an instance took it over from a gone one (orphanedHolds). */
  claimed_at: number | null;
}

/** Users with their external ids as an array, sorted (see UserWithIdsRow). */
const USER_WITH_IDS = `SELECT u.*, COALESCE((SELECT array_agg(e.external_id ORDER BY e.external_id) FROM user_external_ids e WHERE e.user_id = u.id), '{}') AS external_ids
  FROM users u`;

/** Thrown inside a transaction to roll it back, carrying the refusal its method answers with. */
class Refused extends Error {
  constructor(readonly result: Created<User>) {
    super('refused');
  }
}

/** The budgets of a request's scopes, as resolved and cached (see PostgresStore.resolved). */
interface ResolvedBudgets {
  /** The scope names, distinct and in text order (the order their rows are locked in). */
  names: string[];
  /** As stored or configured: without their grants, which budgetsAt() adds at the call's instant. */
  budgets: Budget[];
  /** The grants of these scopes (a few each: those that ended are skipped where they are applied). */
  grants: Grant[];
  fingerprint: string;
}

interface Metered {
  /** With the grants active at the call's instant in their limits. */
  budgets: Budget[];
  answer: MeteringAnswer;
  /** The grants the budgets were resolved with. */
  grants: Grant[];
}

/** A reservation or lease extension waiting for its batch (see CallBatcher). */
interface QueuedAdmission {
  op: 'reserve' | 'extend';
  scopes: readonly Scope[];
  now: number;
  /** The op's own fields, as lq_meter_many reads them. */
  fields: MeterFields;
  model: string | null | typeof NO_BUDGETS;
  /** The times its budgets were stale. */
  attempt: number;
  resolve: (metered: Metered) => void;
  reject: (error: unknown) => void;
}

/** A queued admission with its budgets resolved, as one item of lq_meter_many. */
interface PreparedAdmission {
  budgets: Budget[];
  grants: Grant[];
  names: string[];
  item: BatchItem & { op: QueuedAdmission['op']; fields: MeterFields };
}

/** A settle waiting for its group commit; `attempt` counts the times its budgets were stale. */
interface QueuedSettle {
  request: SettleRequest;
  attempt: number;
  resolve: (result: SettleResult) => void;
  reject: (error: unknown) => void;
}

/** A settle with what lq_settle_many is given for it (see metering-functions-14.ts). */
interface PreparedSettle {
  request: SettleRequest;
  budgets: Budget[];
  added: Sums;
  arg: BatchItem & { scopes: string[]; entry: Omit<LedgerRow, 'id'>; overrun?: { key: string; windowStart: number } };
}

type RunStatement = (sql: Statement, args: unknown[]) => Promise<pg.QueryResult<{ answer: unknown }>>;

/** budgetsAt()'s model for a call that is to count against no budget (ReserveRequest.ratesOnly). */
const NO_BUDGETS = Symbol('no budgets');

/** Bounds the in-memory caches (budgets per scope set, subjects of this instance's holds). */
const CACHE_LIMIT = 10_000;

/** An active key with its user, by secret hash ($1): every request's first statement (findKeyByHash). */
const IDENTITY_COLUMNS = 'k.*, u.name AS user_name, u.project_id, u.created_at AS user_created_at';
const IDENTITY_FROM = 'FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = $1 AND k.revoked_at IS NULL';
const FIND_KEY: Prepared = { name: 'lq_find_key', text: `SELECT ${IDENTITY_COLUMNS} ${IDENTITY_FROM}` };
/**
 * keyStates: the key, and lq_usage_totals($5) for the scopes it is guessed to have (key $2, user
 * $3, project $4), evaluated only when it still has them.
 */
const KEY_STATES: Prepared = {
  name: 'lq_key_states',
  text: `SELECT ${IDENTITY_COLUMNS},
           CASE WHEN k.id = $2 AND k.user_id = $3 AND u.project_id IS NOT DISTINCT FROM $4 THEN lq_usage_totals($5::jsonb) END AS answer
         ${IDENTITY_FROM}`,
};
const USAGE_TOTALS: Prepared = { name: 'lq_usage_totals', text: 'SELECT lq_usage_totals($1::jsonb) AS answer' };
/** `$1, $2, … $count`. */
const parameters = (count: number) => Array.from({ length: count }, (_, i) => `$${i + 1}`).join(', ');
/** Migration 14's batch functions: their jsonb, the windows as JSON text, then their columns (metering-columns.ts columnParameters). */
const METER_BATCH: Prepared = { name: 'lq_meter_many_14', text: `SELECT lq_meter_many(${parameters(28)}) AS answer` };
const SETTLE_BATCH: Prepared = { name: 'lq_settle_many_14', text: `SELECT lq_settle_many(${parameters(26)}) AS answer` };
/** Migration 15's: a hold released, or renewed, through its own rows (hold-rows-15.ts). */
const RELEASE_HOLD: Prepared = { name: 'lq_release_hold_15', text: 'SELECT lq_release_hold($1) AS released' };
const RENEW_HOLD: Prepared = { name: 'lq_renew_hold_15', text: 'SELECT lq_renew_hold($1, $2) AS renewed' };
type IdentityRow = KeyRow & { user_name: string; project_id: string | null; user_created_at: number };
const identityOf = (row: IdentityRow): KeyIdentity => ({
  key: toKey(row),
  user: toUserRef({ id: row.user_id, name: row.user_name, project_id: row.project_id, created_at: row.user_created_at }),
});
/** Bounds one group commit, as SqliteStore's does. */
const MAX_SETTLES_PER_COMMIT = 256;
/** Group commits one instance runs at once (see CallBatcher). */
const SETTLE_CALLS = 2;
/** Bounds one batch of admissions. */
const MAX_ADMISSIONS_PER_BATCH = 256;
/** Batches of admissions one instance runs at once (see CallBatcher). */
const ADMISSION_CALLS = 2;
/** Budgets changed under a call this many times in a row is an error, not a race to keep losing. */
const STALE_RETRIES = 5;

/**
 * admit() on the states lq_meter_many read for a reservation or extension, which must be the decision lq_admit took on
 * them: a port that drifted from admission.ts is an error, never a quietly different admission.
 */
function agreed(decision: Admission, answer: MeteringAnswer): Admission {
  const same = decision.ok
    ? answer.ok === true && (answer.granted === undefined || (answer.granted[0] === decision.tokens && answer.granted[1] === decision.micros && answer.granted[2] === decision.outputTokens))
    : answer.ok === false && answer.blocking === decision.blockingIndex;
  if (!same) throw new Error(`lq_admit decided ${JSON.stringify({ ok: answer.ok, blocking: answer.blocking, granted: answer.granted })}, admit() ${JSON.stringify(decision)}`);
  return decision;
}

interface RateLimitRow {
  scope: string;
  limits: RateLimitOverride;
  updated_at: number;
}

/** A `rate_limits` row as a setting (its scope text is one the admin API validated). */
function toRateSetting(row: RateLimitRow): RateLimitSetting {
  const colon = row.scope.indexOf(':');
  return { scope: { kind: row.scope.slice(0, colon), id: row.scope.slice(colon + 1) } as RateScope, limits: row.limits, updatedAt: row.updated_at };
}

/** lq_rate_decide must name the limit decideRates() names (or none, as it does). */
function agreedRates(limited: RateLimited | null, answer: MeteringAnswer): RateLimited | null {
  const theirs = answer.rateLimited ?? null;
  const same =
    limited === null
      ? theirs === null
      : theirs !== null && theirs.field === limited.field && theirs.limit === limited.limit && theirs.retryAfterMs === limited.retryAfterMs && formatRateScope(theirs.scope) === formatRateScope(limited.scope);
  if (!same) throw new Error(`lq_rate_decide decided ${JSON.stringify(theirs)}, decideRates() ${JSON.stringify(limited)}`);
  return limited;
}

/** A budget row as rows.ts reads it ("window" is a keyword in PostgreSQL, so the column is window_spec). */
const BUDGET_COLUMNS = 'id, scope, window_spec AS "window", limit_tokens, limit_micros, thresholds, on_limit, downgrade_to, models, fallback';

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
/** How far apart the instances' clocks may be before a counter retires under one of them too early. */
const CLOCK_SKEW_MARGIN_MS = 5 * 60_000;
/** Serialises the one-time cleanup when the config's default budgets changed. */
const DEFAULTS_LOCK = 0x6c71_6466; // 'lqdf'
/**
 * An orphan this instance took over and has not settled after this long (its settle failed: the
 * database went away) is handed out again. Far longer than a settle takes, so never twice at once.
 */
const RECLAIM_AFTER_MS = 60_000;
/** A hold whose instance has no heartbeat newer than $2 (and is not this one, $3): its process is gone. */
const INSTANCE_GONE = `h.instance_id <> $3 AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = h.instance_id AND i.heartbeat_at > $2)`;

/**
 * Locks the holds a query selects, in id order, and answers their ids. Every path that deletes or
 * grows holds locks the hold's row before the budgets' reservations (which it locks in key order),
 * so two of them never wait on each other in a cycle, and a hold renewed or claimed meanwhile is
 * checked again against the query before it is taken.
 */
async function lockHolds(tx: Tx, select: string, args: unknown[]): Promise<string[]> {
  return (await tx.query<{ id: string }>(`${select} ORDER BY h.id FOR UPDATE OF h`, args)).rows.map((r) => r.id);
}

/** Deletes locked holds, and gives their shares back to the budgets' reservations, each changed once (migration 16). */
async function deleteHolds(tx: Tx, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return (await tx.query<{ deleted: number }>('SELECT lq_holds_deleted($1) AS deleted', [ids])).rows[0]?.deleted ?? 0;
}

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
 * admission is kept in memory: holds, counters and budgets are rows every instance reads. (The
 * budgets an instance resolved are cached, but every use is checked against the rows under the
 * lock: see `resolved`.)
 *
 * Admission across instances: a transaction that checks or changes the usage of a budget (reserve,
 * extend, settle, putBudget, deleteBudget) first locks the row of each scope involved in
 * `scope_locks` (the request's key, user, project and global) with SELECT … FOR UPDATE, in text
 * order, so two transactions never wait on each other in a cycle. Every budget belongs to one
 * scope, so between that lock and COMMIT nobody else can add a hold or a settled entry to any of the
 * request's budgets, or change them: the budgets, counters and holds read next, the decision and
 * the writes are as atomic as SQLite's synchronous step, whichever instance the requests arrive
 * at. Reservations and extensions go in batches, one call of lq_meter_many for those that
 * arrived in one turn of the event loop, and settles in group commits, one call of lq_settle_many
 * (metering-functions-12.ts, given their columns by 13 and their windows as text by 14): each
 * takes the locks of all its requests' scopes once, reads, decides and writes inside the server,
 * so a lock is held for the batch's work alone, never across a round trip to this process. Reads
 * (/quota) take no lock: they see the last committed state.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly alerts: PgAlertRecorder;
  /** Scope rows known to exist, so a budget change skips their INSERT … ON CONFLICT. */
  private readonly lockRows = new Set<string>();
  /** By the request's scope names in order (see `resolved`). */
  private readonly budgetCache = new Map<string, ResolvedBudgets>();
  /** The scopes each key hash had when this instance last looked it up: keyStates' guess, checked by the database. */
  private readonly keyScopes = new Map<string, Parameters<typeof scopesOfKey>[0]>();
  private readonly holdSubjects = new Map<string, HeldFor>();
  /** Reservations and extensions, a call of lq_meter_many per batch. */
  private readonly admissions = new CallBatcher<QueuedAdmission>((batch) => this.runAdmissions(batch), { calls: ADMISSION_CALLS, maxPerCall: MAX_ADMISSIONS_PER_BATCH });
  /** Settles, a group commit (a call of lq_settle_many) per batch. */
  private readonly settles = new CallBatcher<QueuedSettle>((batch) => this.commitSettles(batch), { calls: SETTLE_CALLS, maxPerCall: MAX_SETTLES_PER_COMMIT });

  /** Whether settles fire projected-exhaustion alerts. */
  private readonly projection: boolean;
  private readonly alertsRecorded: () => void;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresStoreOptions,
  ) {
    const alerts = options.alerts ?? { channelsFor: () => [], projection: true };
    this.alerts = new PgAlertRecorder(alerts);
    this.projection = alerts.projection;
    this.alertsRecorded = alerts.recorded ?? (() => undefined);
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
          await tx.query(`DELETE FROM window_totals WHERE budget_key NOT IN (SELECT scope || '|' || period FROM budgets)`);
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

  async renameProject(id: string, name: string): Promise<Project | null> {
    const row = (await query<ProjectRow>(this.pool, 'UPDATE projects SET name = $1 WHERE id = $2 RETURNING *', [name, id])).rows[0];
    return row ? toProject(row) : null;
  }

  async createUser(user: { id: string; name: string; projectId: string | null; externalIds?: readonly string[] }, now: number): Promise<Created<User>> {
    const externalIds = sortedUnique(user.externalIds ?? []);
    try {
      return await inTransaction(this.pool, async (tx): Promise<Created<User>> => {
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
        if (externalIds.length > 0) {
          const linked = await tx.query<{ external_id: string }>(
            `INSERT INTO user_external_ids (external_id, user_id, linked_at) SELECT unnest($1::text[]), $2, $3
             ON CONFLICT (external_id) DO NOTHING RETURNING external_id`,
            [externalIds, user.id, now],
          );
          if (linked.rows.length < externalIds.length) {
            const done = new Set(linked.rows.map((r) => r.external_id));
            throw new Refused({ ok: false, reason: 'exists', field: 'externalIds', value: externalIds.find((id) => !done.has(id)) as string });
          }
        }
        return { ok: true, value: { id: user.id, name: user.name, projectId: user.projectId, createdAt: now, externalIds } };
      });
    } catch (error) {
      if (error instanceof Refused) return error.result;
      throw error;
    }
  }

  async listUsers(): Promise<User[]> {
    return (await query<UserWithIdsRow>(this.pool, `${USER_WITH_IDS} ORDER BY u.id`)).rows.map(toUser);
  }

  async getUser(id: string): Promise<User | null> {
    const row = (await query<UserWithIdsRow>(this.pool, `${USER_WITH_IDS} WHERE u.id = $1`, [id])).rows[0];
    return row ? toUser(row) : null;
  }

  /** findKeyByHash is not cached here, so every instance charges the new project from its next request. */
  async updateUser(id: string, change: { name?: string; projectId?: string | null }): Promise<UserChange> {
    return inTransaction(this.pool, async (tx): Promise<UserChange> => {
      const row = (await tx.query<UserRow>('SELECT * FROM users WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (!row) return { ok: false, reason: 'missing-user' };
      const projectId = change.projectId === undefined ? row.project_id : change.projectId;
      // FOR SHARE: the project cannot be deleted between this check and the update.
      if (projectId !== null && (await tx.query('SELECT 1 FROM projects WHERE id = $1 FOR SHARE', [projectId])).rowCount === 0) {
        return { ok: false, reason: 'missing-reference', field: 'projectId' };
      }
      await tx.query('UPDATE users SET name = $1, project_id = $2 WHERE id = $3', [change.name ?? row.name, projectId, id]);
      return { ok: true, user: toUser((await tx.query<UserWithIdsRow>(`${USER_WITH_IDS} WHERE u.id = $1`, [id])).rows[0] as UserWithIdsRow) };
    });
  }

  async linkExternalId(userId: string, externalId: string, now: number): Promise<ExternalIdChange> {
    return inTransaction(this.pool, async (tx): Promise<ExternalIdChange> => {
      if ((await tx.query('SELECT 1 FROM users WHERE id = $1', [userId])).rowCount === 0) return { ok: false, reason: 'missing-user' };
      // Each statement sees what committed before it: a link another transaction removes between the
      // insert and the read is tried again.
      for (;;) {
        const inserted = await tx.query('INSERT INTO user_external_ids (external_id, user_id, linked_at) VALUES ($1, $2, $3) ON CONFLICT (external_id) DO NOTHING', [
          externalId,
          userId,
          now,
        ]);
        const owner = inserted.rowCount === 1 ? userId : (await tx.query<{ user_id: string }>('SELECT user_id FROM user_external_ids WHERE external_id = $1', [externalId])).rows[0]?.user_id;
        if (owner === undefined) continue;
        if (owner !== userId) return { ok: false, reason: 'taken', userId: owner };
        const user = toUser((await tx.query<UserWithIdsRow>(`${USER_WITH_IDS} WHERE u.id = $1`, [userId])).rows[0] as UserWithIdsRow);
        return { ok: true, user, changed: inserted.rowCount === 1 };
      }
    });
  }

  async unlinkExternalId(userId: string, externalId: string): Promise<ExternalIdChange> {
    return inTransaction(this.pool, async (tx): Promise<ExternalIdChange> => {
      if ((await tx.query('SELECT 1 FROM users WHERE id = $1', [userId])).rowCount === 0) return { ok: false, reason: 'missing-user' };
      const deleted = await tx.query('DELETE FROM user_external_ids WHERE external_id = $1 AND user_id = $2', [externalId, userId]);
      if (deleted.rowCount === 0) {
        const owner = (await tx.query<{ user_id: string }>('SELECT user_id FROM user_external_ids WHERE external_id = $1', [externalId])).rows[0]?.user_id;
        return owner === undefined ? { ok: false, reason: 'not-linked' } : { ok: false, reason: 'taken', userId: owner };
      }
      const user = toUser((await tx.query<UserWithIdsRow>(`${USER_WITH_IDS} WHERE u.id = $1`, [userId])).rows[0] as UserWithIdsRow);
      return { ok: true, user, changed: true };
    });
  }

  async findUserByExternalId(externalId: string): Promise<User | null> {
    const row = (
      await query<UserWithIdsRow>(this.pool, `${USER_WITH_IDS} WHERE u.id = (SELECT user_id FROM user_external_ids WHERE external_id = $1)`, [externalId])
    ).rows[0];
    return row ? toUser(row) : null;
  }

  async findNamedUser(name: string): Promise<UserRef | null> {
    const row = (
      await query<UserRow>(this.pool, 'SELECT * FROM users WHERE id = COALESCE((SELECT user_id FROM user_external_ids WHERE external_id = $1), $1)', [name])
    ).rows[0];
    return row ? toUserRef(row) : null;
  }

  async createKey(
    key: { id: string; userId: string; name: string; service: boolean; refusalStyle?: RefusalStyle | null; secretHash: string; prefix: string },
    now: number,
  ): Promise<Created<ApiKey>> {
    const refusalStyle = key.refusalStyle ?? null;
    return inTransaction(this.pool, async (tx): Promise<Created<ApiKey>> => {
      if ((await tx.query('SELECT 1 FROM users WHERE id = $1', [key.userId])).rowCount === 0) return { ok: false, reason: 'missing-reference', field: 'userId' };
      await tx.query(
        'INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, service, refusal_style, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [key.id, key.userId, key.name, key.prefix, key.secretHash, key.service, refusalStyle, now],
      );
      return {
        ok: true,
        value: { id: key.id, userId: key.userId, name: key.name, prefix: key.prefix, service: key.service, refusalStyle, createdAt: now, revokedAt: null },
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
    const row = (await query<IdentityRow>(this.pool, FIND_KEY, [secretHash])).rows[0];
    return row ? identityOf(row) : null;
  }

  async revokeKey(id: string, now: number): Promise<ApiKey | null> {
    await query(this.pool, 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id]);
    return this.getKey(id);
  }

  /** findKeyByHash is not cached here, so every instance reads the new style on its next request. */
  async setKeyRefusalStyle(id: string, refusalStyle: RefusalStyle | null): Promise<ApiKey | null> {
    const row = (await query<KeyRow>(this.pool, 'UPDATE api_keys SET refusal_style = $1 WHERE id = $2 RETURNING *', [refusalStyle, id])).rows[0];
    return row ? toKey(row) : null;
  }

  /* ── budgets ───────────────────────────────────────────────────────────── */

  async putBudget(input: BudgetInput, now: number): Promise<{ budget: Budget; replaced: Budget | null }> {
    const scope = formatScope(input.scope);
    const models = input.models ?? null;
    const period = budgetPeriod(input.window, models);
    const changed = await inTransaction(this.pool, async (tx) => {
      // Under the scope's lock: no admission or settle of it runs while its counters are dropped.
      await this.lockScopes(tx, [input.scope]);
      const existing = (await tx.query<BudgetRow>(`SELECT ${BUDGET_COLUMNS} FROM budgets WHERE scope = $1 AND period = $2`, [scope, period])).rows[0];
      const id = existing?.id ?? `bud_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
      const row = (
        await tx.query<BudgetRow>(
          `INSERT INTO budgets (id, scope, period, window_spec, limit_tokens, limit_micros, thresholds, on_limit, downgrade_to, created_at, updated_at, models, fallback)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)
           ON CONFLICT (scope, period) DO UPDATE SET window_spec = excluded.window_spec, limit_tokens = excluded.limit_tokens,
             limit_micros = excluded.limit_micros, thresholds = excluded.thresholds, on_limit = excluded.on_limit,
             downgrade_to = excluded.downgrade_to, updated_at = excluded.updated_at, models = excluded.models, fallback = excluded.fallback
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
            models === null ? null : JSON.stringify(models),
            input.fallback?.length ? JSON.stringify(input.fallback) : null,
          ],
        )
      ).rows[0] as BudgetRow;
      // The window may have moved (another time zone): counters are counted again from the ledger.
      await tx.query('DELETE FROM usage_counters WHERE budget_key = $1', [`${scope}|${period}`]);
      await tx.query('DELETE FROM window_totals WHERE budget_key = $1', [`${scope}|${period}`]);
      return { budget: this.toBudget(row), replaced: existing === undefined ? null : this.toBudget(existing) };
    });
    // Other instances learn of it from the fingerprint; this one need not ask.
    this.budgetCache.clear();
    return changed;
  }

  async listBudgets(): Promise<Budget[]> {
    return (await query<BudgetRow>(this.pool, `SELECT ${BUDGET_COLUMNS} FROM budgets ORDER BY scope, period`)).rows.map((r) => this.toBudget(r));
  }

  async deleteBudget(id: string): Promise<Budget | null> {
    const deleted = await inTransaction(this.pool, async (tx) => {
      const row = (await tx.query<BudgetRow>(`SELECT ${BUDGET_COLUMNS} FROM budgets WHERE id = $1`, [id])).rows[0];
      if (!row) return null;
      const budget = this.toBudget(row);
      await this.lockScopes(tx, [budget.scope]);
      await tx.query('DELETE FROM budgets WHERE id = $1', [id]);
      await tx.query('DELETE FROM usage_counters WHERE budget_key = $1', [budget.key]);
      await tx.query('DELETE FROM window_totals WHERE budget_key = $1', [budget.key]);
      return budget;
    });
    this.budgetCache.clear();
    return deleted;
  }

  private toBudget(row: BudgetRow): Budget {
    return toBudget(row, this.options.defaultThresholds);
  }

  /* ── rate limits ───────────────────────────────────────────────────────── */

  /** Read by lq_meter_many under the scope locks, so every instance applies a change from its next admission on. */
  async putRateLimit(scope: RateScope, limits: RateLimitOverride, now: number): Promise<{ setting: RateLimitSetting; replaced: RateLimitSetting | null }> {
    const text = formatRateScope(scope);
    return inTransaction(this.pool, async (tx) => {
      const old = (await tx.query<RateLimitRow>('SELECT * FROM rate_limits WHERE scope = $1 FOR UPDATE', [text])).rows[0];
      const row = (
        await tx.query<RateLimitRow>(
          `INSERT INTO rate_limits (scope, limits, created_at, updated_at) VALUES ($1, $2, $3, $3)
           ON CONFLICT (scope) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at RETURNING *`,
          [text, JSON.stringify(limits), now],
        )
      ).rows[0] as RateLimitRow;
      return { setting: toRateSetting(row), replaced: old === undefined ? null : toRateSetting(old) };
    });
  }

  async listRateLimits(): Promise<RateLimitSetting[]> {
    return (await query<RateLimitRow>(this.pool, 'SELECT * FROM rate_limits ORDER BY scope')).rows.map(toRateSetting);
  }

  async deleteRateLimit(scope: RateScope): Promise<RateLimitSetting | null> {
    const row = (await query<RateLimitRow>(this.pool, 'DELETE FROM rate_limits WHERE scope = $1 RETURNING *', [formatRateScope(scope)])).rows[0];
    return row === undefined ? null : toRateSetting(row);
  }

  /**
   * Every budget that applies to these scopes, with the fingerprint of the stored ones. Cached:
   * each metering function compares the fingerprint under the scope locks and answers `stale` when
   * another instance changed a budget since, and the budgets are then read again.
   */
  private async resolved(scopes: readonly Scope[], fresh: boolean): Promise<ResolvedBudgets> {
    const cacheKey = scopes.map(formatScope).join('\n');
    const cached = fresh ? undefined : this.budgetCache.get(cacheKey);
    if (cached) return cached;
    const names = [...new Set(scopes.map(formatScope))].sort();
    const found = (
      await query<{ fingerprint: string; rows: BudgetRow[]; grants: GrantRow[] }>(
        this.pool,
        `WITH b AS (SELECT ${BUDGET_COLUMNS}, period FROM budgets WHERE scope = ANY($1))
         SELECT lq_fingerprint($1) AS fingerprint, COALESCE(json_agg(b ORDER BY b.scope, b.period), '[]') AS rows,
           (SELECT COALESCE(json_agg(g ORDER BY g.created_at, g.id), '[]') FROM grants g WHERE g.scope = ANY($1)) AS grants FROM b`,
        [names],
      )
    ).rows[0] as { fingerprint: string; rows: BudgetRow[]; grants: GrantRow[] };
    const stored = found.rows.map((r) => this.toBudget(r));
    const budgets = resolveBudgets(scopes, stored, this.options.defaultBudgets, this.options.defaultThresholds);
    const resolved = { names, budgets, grants: found.grants.map(toGrant), fingerprint: found.fingerprint };
    if (this.budgetCache.size >= CACHE_LIMIT) this.budgetCache.clear();
    this.budgetCache.set(cacheKey, resolved);
    return resolved;
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

  /** The budgets of `scopes` a call counts against at `now`: those of `model`, their limits raised by the grants active then. */
  private budgetsAt(resolved: ResolvedBudgets, now: number, model?: string | null | typeof NO_BUDGETS): Budget[] {
    // A request's own call counts only the budgets of its model (budgetStates, with no model, all).
    const ofModel = model === undefined ? resolved.budgets : model === NO_BUDGETS ? [] : budgetsForModel(resolved.budgets, model);
    // A grant applies in the same admission as its budget.
    return resolved.grants.length === 0 ? ofModel : ofModel.map((b) => withGrants(b, resolved.grants, now).budget);
  }

  /** The states a function read (before its own writes), as BudgetStates. */
  private statesOf(budgets: readonly Budget[], now: number, answer: MeteringAnswer, grants: readonly Grant[] = []): { states: BudgetState[]; used: WindowUsage[] } {
    const used = windowUsagesOf(budgets, answer.used);
    const reserved = reservationsOf(budgets, answer.reserved);
    const states = budgets.map((budget, i): BudgetState => {
      const u = used[i] as WindowUsage;
      const r = reserved[i] as Sums;
      const usage: BudgetUsage = { usedTokens: u.tokens, usedMicros: u.micros, reservedTokens: r.tokens, reservedMicros: r.micros };
      const state: BudgetState = { budget, usage, resetsAt: nextResetAt(budget.window, now, u.oldestUsed) };
      const active = grants.length === 0 ? [] : withGrants(budget, grants, now).active;
      if (active.length > 0) state.grants = active;
      return state;
    });
    return { states, used };
  }

  /** GET /quota: one statement, no lock (the last committed state), the budgets read again while they are stale. */
  async budgetStates(scopes: Scope[], now: number): Promise<BudgetState[]> {
    return this.readStates(scopes, now, false);
  }

  /** budgetStates, its budgets read from the database first when the cached ones are known to be stale. */
  private async readStates(scopes: Scope[], now: number, knownStale: boolean): Promise<BudgetState[]> {
    for (let attempt = 0; ; attempt++) {
      const resolved = await this.resolved(scopes, knownStale || attempt > 0);
      const budgets = this.budgetsAt(resolved, now);
      const answer = (await query<{ answer: MeteringAnswer }>(this.pool, USAGE_TOTALS, [this.usageArg(resolved, budgets, now)])).rows[0]
        ?.answer as MeteringAnswer;
      if (answer.stale !== true) return this.statesOf(budgets, now, answer, resolved.grants).states;
      if (attempt >= STALE_RETRIES) throw new Error(`the budgets of ${resolved.names.join(', ')} kept changing`);
    }
  }

  /**
   * GET /quota with a user key in one round trip: the key is looked up (uncached, as
   * findKeyByHash) in the statement that reads the budgets of the scopes it had when this instance
   * last saw it. When it has other scopes now (its user moved to another project), or the budgets
   * changed, or it is new here, its budgets are read after it, as budgetStates does.
   */
  async keyStates(secretHash: string, now: number): Promise<KeyStates | null> {
    const guess = this.keyScopes.get(secretHash);
    if (guess !== undefined) {
      const scopes = scopesOfKey(guess);
      const resolved = await this.resolved(scopes, false);
      const budgets = this.budgetsAt(resolved, now);
      const row = (
        await query<IdentityRow & { answer: MeteringAnswer | null }>(this.pool, KEY_STATES, [
          secretHash,
          guess.key.id,
          guess.user.id,
          guess.user.projectId,
          this.usageArg(resolved, budgets, now),
        ])
      ).rows[0];
      if (row === undefined) {
        this.keyScopes.delete(secretHash);
        return null;
      }
      const identity = identityOf(row);
      if (row.answer !== null && row.answer.stale !== true) return { identity, states: this.statesOf(budgets, now, row.answer, resolved.grants).states };
      this.rememberKeyScopes(secretHash, identity);
      // Stale (answered, but for other budgets): the cached ones are not read again as they are.
      return { identity, states: await this.readStates(scopesOfKey(identity), now, row.answer !== null) };
    }
    const identity = await this.findKeyByHash(secretHash);
    if (identity === null) return null;
    this.rememberKeyScopes(secretHash, identity);
    return { identity, states: await this.budgetStates(scopesOfKey(identity), now) };
  }

  private rememberKeyScopes(secretHash: string, { key, user }: KeyIdentity): void {
    if (this.keyScopes.size >= CACHE_LIMIT) this.keyScopes.clear();
    this.keyScopes.set(secretHash, { key: { id: key.id }, user: { id: user.id, projectId: user.projectId } });
  }

  /** lq_usage_totals' argument: the budgets at `now` and the fingerprint they were resolved under. */
  private usageArg(resolved: ResolvedBudgets, budgets: Budget[], now: number): string {
    return JSON.stringify({ scopes: resolved.names, fingerprint: resolved.fingerprint, ...meteringArgs(budgets, now, this.projection) });
  }

  /* ── admission in batches ──────────────────────────────────────────────── */

  /**
   * A reservation or lease extension, decided in the next batch: those queued in one turn of the
   * event loop go to lq_meter_many together (see CallBatcher). Answers what the database read
   * and decided for this one, with the budgets it was decided on.
   */
  private admitInBatch(op: QueuedAdmission['op'], scopes: readonly Scope[], now: number, fields: MeterFields, model: string | null | typeof NO_BUDGETS): Promise<Metered> {
    return new Promise((resolve, reject) => this.admissions.push({ op, scopes, now, fields, model, attempt: 0, resolve, reject }));
  }

  private async runAdmissions(batch: QueuedAdmission[]): Promise<void> {
    let prepared: PreparedAdmission[];
    let answers: MeteringAnswer[];
    try {
      prepared = await Promise.all(batch.map((q) => this.prepareAdmission(q)));
      const items = prepared.map((p) => p.item);
      const columns = meterColumns(items);
      const p = JSON.stringify({ items: items.map((item) => item.fields) });
      const answered = (await this.applyOnce(METER_BATCH, [p, JSON.stringify(columns.windows), ...columnParameters(columns)])).rows[0]?.answer;
      answers = meterAnswers(answered, prepared.map((p) => p.budgets.length));
    } catch (error) {
      // The batch is one transaction: when it failed, none of it happened, and one bad item must
      // not fail the others: they are tried one by one. When the outcome is unknown (the connection
      // dropped mid-call), none is run again.
      if (batch.length > 1 && !(error instanceof StoreUnavailableError)) await Promise.all(batch.map((q) => this.runAdmissions([q])));
      else for (const q of batch) q.reject(error);
      return;
    }
    batch.forEach((q, i) => {
      const answer = answers[i] as MeteringAnswer;
      const { budgets, grants, names } = prepared[i] as PreparedAdmission;
      if (answer.stale !== true) q.resolve({ budgets, answer, grants });
      else if (q.attempt >= STALE_RETRIES) q.reject(new Error(`the budgets of ${names.join(', ')} kept changing during a ${q.op}`));
      else this.admissions.push({ ...q, attempt: q.attempt + 1 });
    });
  }

  private async prepareAdmission(q: QueuedAdmission): Promise<PreparedAdmission> {
    const resolved = await this.resolved(q.scopes, q.attempt > 0);
    const budgets = this.budgetsAt(resolved, q.now, q.model);
    // How an upstream's budget admits depends on the quote (see admissionOnLimit): lq_admit is told per budget.
    const failover = q.fields.quote.failover === true;
    const item = { op: q.op, scopes: resolved.names, fingerprint: resolved.fingerprint, ...meteringArgs(budgets, q.now, this.projection, failover), fields: q.fields };
    return { budgets, grants: resolved.grants, names: resolved.names, item };
  }

  private readonly applyOnce: RunStatement = (sql, args) => applyOnce(this.pool, sql, args);

  /* ── holds and settlement ──────────────────────────────────────────────── */

  /**
   * One item of the next lq_meter_many call (one round trip for the batch): under the scope locks
   * it reads the states, decides (lq_admit) and writes the hold, all inside the server. admit() runs
   * again here on the states it read, and must agree.
   * With `rates`, the rate limits are decided first under the same locks (lq_rate_decide, which
   * decideRates() must agree with too) and an admitted request is counted in their windows.
   */
  reserve(request: ReserveRequest & { rates?: undefined }): Promise<BudgetReserveResult>;
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const { subject, quote, now } = request;
    const hold = {
      id: request.holdId,
      instance: this.options.instanceId,
      user: subject.userId,
      project: subject.projectId,
      key: subject.keyId,
      createdAt: now,
      expiresAt: now + request.ttlMs,
      pending: request.pending,
    };
    const { route } = request;
    const rates = request.rates && {
      now,
      tokens: request.rates.tokens,
      alreadyCounted: request.rates.alreadyCounted === true,
      scopes: rateScopesOf(subject).map((s) => ({ ...s, limit: request.rates?.limits[s.kind] ?? {} })),
    };
    const scopes = scopesOf(subject, route?.upstream ?? null);
    const fields = { quote: quoteArg(quote), hold, ...(rates && { rates }) };
    const { budgets, answer, grants } = await this.admitInBatch('reserve', scopes, now, fields, request.ratesOnly === true ? NO_BUDGETS : (route?.model ?? null));
    if (answer.exists === true) throw new Error(`hold ${request.holdId} already exists`);
    const { states } = this.statesOf(budgets, now, answer, grants);
    const checks = rates && (answer.rates ?? []);
    if (rates && checks) {
      const limited = agreedRates(decideRates(checks, rates.tokens, now, rates.alreadyCounted), answer);
      if (limited) return { ok: false, rateLimited: limited, rates: checks, budgets: states };
    }
    const decision = agreed(admit(states, quote), answer);
    if (!decision.ok) return { ok: false, blocking: states[decision.blockingIndex] as BudgetState, budgets: states, ...(checks && { rates: checks }) };
    this.rememberHold(request.holdId, { subject, route });
    for (const state of states) {
      state.usage.reservedTokens += decision.tokens;
      state.usage.reservedMicros += decision.micros;
    }
    return {
      ok: true,
      hold: {
        id: request.holdId,
        subject,
        tokens: decision.tokens,
        micros: decision.micros,
        outputTokens: decision.outputTokens,
        createdAt: now,
        expiresAt: hold.expiresAt,
        ...(route ? { route } : {}),
      },
      budgets: states,
      outputRoom: decision.outputRoom,
      ...(checks && { rates: checks }),
    };
  }

  /** The subjects (and routes) of this instance's live holds, so extend knows the scopes to lock without asking. */
  private rememberHold(holdId: string, held: HeldFor): void {
    if (this.holdSubjects.size >= CACHE_LIMIT) this.holdSubjects.clear();
    this.holdSubjects.set(holdId, held);
  }

  private async holdSubject(holdId: string): Promise<HeldFor | null> {
    const known = this.holdSubjects.get(holdId);
    if (known) return known;
    const row = (await query<HoldRow>(this.pool, 'SELECT * FROM holds WHERE id = $1', [holdId])).rows[0];
    if (!row) return null;
    // Another instance's hold: its route is in its pending charge, when it has one.
    const pending = row.pending === null ? null : (JSON.parse(row.pending) as PendingCharge);
    return { subject: toHold(row).subject, route: pending ? { model: pending.model, upstream: pending.upstream ?? null } : undefined };
  }

  async extend(holdId: string, amount: { tokens: number; micros: number }, now: number, ttlMs: number, deliveredTokens?: number): Promise<ExtendResult> {
    const held = await this.holdSubject(holdId);
    let subject = held?.subject ?? null;
    const route = held?.route;
    for (let attempt = 0; subject !== null; attempt++) {
      const fields = {
        holdId,
        subject: { user: subject.userId, project: subject.projectId, key: subject.keyId },
        quote: quoteArg(amount),
        expiresAt: now + ttlMs,
        now,
        delivered: deliveredTokens,
      };
      const { budgets, answer } = await this.admitInBatch('extend', scopesOf(subject, route?.upstream ?? null), now, fields, route?.model ?? null);
      if (answer.subject !== undefined && attempt === 0) {
        // Not the subject remembered (cannot happen for a hold this instance made): lock its own.
        subject = { userId: answer.subject.user, projectId: answer.subject.project, keyId: answer.subject.key };
        continue;
      }
      if (answer.unknown === true || answer.subject !== undefined) break;
      const { states } = this.statesOf(budgets, now, answer);
      const decision = agreed(admit(states, { tokens: amount.tokens, micros: amount.micros }), answer);
      if (!decision.ok) return { ok: false, reason: 'exceeded', blocking: states[decision.blockingIndex] as BudgetState };
      return { ok: true, hold: { ...toHold(answer.hold as HoldRow), ...(route ? { route } : {}) } };
    }
    this.holdSubjects.delete(holdId);
    return { ok: false, reason: 'unknown-hold' };
  }

  /**
   * Durable before the promise resolves. Settles that arrive in the same turn of the event loop
   * share one call of lq_settle_many and one commit (group commit, as SqliteStore does): under the locks
   * of all their scopes, each writes its entry (unique per request, so a second settle finds the
   * first), the counters of the buckets at `now`, and its hold gone. One that may fire an alert is
   * left out by the call and settled again in a transaction that records its alerts before it
   * commits: both commit, or neither.
   */
  settle(request: SettleRequest): Promise<SettleResult> {
    this.holdSubjects.delete(request.holdId);
    return new Promise((resolve, reject) => this.settles.push({ request, attempt: 0, resolve, reject }));
  }

  private async commitSettles(batch: QueuedSettle[]): Promise<void> {
    let prepared: PreparedSettle[];
    let answers: MeteringAnswer[];
    try {
      prepared = await Promise.all(batch.map((q) => this.prepareSettle(q.request, q.attempt > 0)));
      answers = await this.callSettle(prepared, false, this.applyOnce);
    } catch (error) {
      // One bad settle must not fail the others that shared its call: retry them one by one. When
      // the outcome is unknown (the connection dropped mid-call), none is run again.
      if (batch.length > 1 && !(error instanceof StoreUnavailableError)) await Promise.all(batch.map((q) => this.commitSettles([q])));
      else for (const q of batch) q.reject(error);
      return;
    }
    await Promise.all(
      batch.map((q, i) => {
        const answer = answers[i] as MeteringAnswer;
        // A stale settle goes to a later call, and this one does not wait for it: with every call
        // of the batcher waiting for its own stale settles, none would ever start.
        if (answer.stale !== true) return this.finishSettle(q, prepared[i] as PreparedSettle, answer).then(q.resolve, q.reject);
        if (q.attempt >= STALE_RETRIES) q.reject(new Error(`the budgets of ${(prepared[i] as PreparedSettle).arg.scopes.join(', ')} kept changing during a settle`));
        else this.settles.push({ ...q, attempt: q.attempt + 1 });
        return undefined;
      }),
    );
  }

  private async finishSettle(queued: QueuedSettle, prepared: PreparedSettle, answer: MeteringAnswer): Promise<SettleResult> {
    if (answer.alerts === true) return this.settleWithAlerts(queued.request);
    const settled = this.settled(answer);
    // lq_alerts_due is planBudgetAlerts reduced to a yes or no: should they ever disagree, the
    // alerts are still recorded (once each: the UNIQUE key), just not in the same transaction.
    const moves = settled.duplicate ? [] : this.movesOf(prepared, answer);
    if (moves.some((move) => planBudgetAlerts(move, this.projection).length > 0)) {
      console.error('[lobe-quota] lq_alerts_due missed an alert; recording it after the settle');
      if ((await inTransaction(this.pool, (tx) => this.recordAlerts(tx, moves))) > 0) this.alertsRecorded();
    }
    return settled;
  }

  /** A settle that may fire an alert, alone in a transaction that records its alerts too. */
  private async settleWithAlerts(request: SettleRequest): Promise<SettleResult> {
    const { settled, alerted } = await inTransaction(this.pool, async (tx) => {
      const run: RunStatement = (sql, args) => tx.query(queryConfig(sql, args));
      for (let attempt = 0; ; attempt++) {
        const prepared = await this.prepareSettle(request, attempt > 0);
        const [answer] = (await this.callSettle([prepared], true, run)) as [MeteringAnswer];
        if (answer.stale !== true) {
          const settled = this.settled(answer);
          let alerted = 0;
          if (!settled.duplicate) {
            alerted += await this.recordAlerts(tx, this.movesOf(prepared, answer));
            if (settled.entry.overrunTokens > 0 && (await this.alerts.recordOverrun(tx, settled.entry))) alerted++;
          }
          return { settled, alerted };
        }
        if (attempt >= STALE_RETRIES) throw new Error(`the budgets of ${prepared.arg.scopes.join(', ')} kept changing during a settle`);
      }
    });
    if (alerted > 0) this.alertsRecorded();
    return settled;
  }

  private async prepareSettle(request: SettleRequest, fresh: boolean): Promise<PreparedSettle> {
    const { holdId, subject, usage, now } = request;
    const upstream = usage.upstream ?? null;
    const resolved = await this.resolved(scopesOf(subject, upstream), fresh);
    const { names, fingerprint } = resolved;
    const budgets = this.budgetsAt(resolved, now, usage.model);
    const entry: Omit<LedgerRow, 'id'> = {
      request_id: holdId,
      at: now,
      user_id: subject.userId,
      project_id: subject.projectId,
      key_id: subject.keyId,
      model: usage.model,
      upstream,
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cached_tokens: usage.cachedTokens,
      reasoning_tokens: usage.reasoningTokens,
      cost_micros: usage.costMicros,
      source: usage.source,
      outcome: usage.outcome,
      latency_ms: usage.latencyMs,
      session_id: usage.sessionId,
      tags: Object.keys(usage.tags).length === 0 ? null : JSON.stringify(usage.tags),
      overrun_tokens: usage.overrunTokens ?? 0,
      cache_write_tokens: usage.cacheWriteTokens ?? 0,
      cache_write_1h_tokens: usage.cacheWrite1hTokens ?? 0,
      saved_tokens: usage.savedTokens ?? 0,
      saved_micros: usage.savedMicros ?? 0,
    };
    // An overrun's alert row, for lq_settle_many to tell whether this settle has it to record.
    const overrun = (usage.overrunTokens ?? 0) > 0 ? overrunAlertKey(usage.model, now) : null;
    return {
      request,
      budgets,
      added: { tokens: usage.inputTokens + usage.outputTokens, micros: usage.costMicros },
      arg: {
        scopes: names,
        fingerprint,
        ...meteringArgs(budgets, now, this.projection),
        entry,
        ...(overrun === null ? {} : { overrun: { key: overrun.budgetKey, windowStart: overrun.windowStart } }),
      },
    };
  }

  /** One lq_settle_many call for these settles: the locks of all their scopes, in text order. */
  private async callSettle(settles: readonly PreparedSettle[], inTransaction: boolean, run: RunStatement): Promise<MeteringAnswer[]> {
    const items = settles.map((s) => s.arg);
    const columns = settleColumns(items);
    const p = JSON.stringify({ inTransaction, settles: items.map(({ entry, overrun }) => ({ entry, overrun })) });
    const answered = (await run(SETTLE_BATCH, [p, JSON.stringify(columns.windows), ...columnParameters(columns)])).rows[0]?.answer;
    return settleAnswers(answered, settles.map((s) => ({ entry: s.arg.entry, budgets: s.budgets.length })));
  }

  private settled(answer: MeteringAnswer): SettleResult {
    return { entry: toEntry(answer.entry as LedgerRow), duplicate: answer.duplicate === true };
  }

  /** What the settle did to each budget, for alert planning. */
  private movesOf({ budgets, added, request }: PreparedSettle, answer: MeteringAnswer): BudgetMove[] {
    if (added.tokens <= 0 && added.micros <= 0) return [];
    const { now } = request;
    const { used } = this.statesOf(budgets, now, answer);
    return budgets.map((budget, i) => {
      const u = used[i] as WindowUsage;
      return { budget, before: { tokens: u.tokens, micros: u.micros }, added, oldestUsed: u.oldestUsed, now };
    });
  }


  /** Alerts are written with the usage that caused them, in its transaction. Returns how many were new. */
  private async recordAlerts(tx: Tx, moves: readonly BudgetMove[]): Promise<number> {
    let inserted = 0;
    for (const move of moves) inserted += await this.alerts.record(tx, move);
    return inserted;
  }

  async renew(holdId: string, now: number, ttlMs: number): Promise<boolean> {
    const renewed = await query<{ renewed: boolean }>(this.pool, RENEW_HOLD, [holdId, now + ttlMs]);
    return renewed.rows[0]?.renewed === true;
  }

  async release(holdId: string): Promise<boolean> {
    this.holdSubjects.delete(holdId);
    // The hold, then the budgets' reservations it had, by their keys (migrations 15 and 16).
    const released = await query<{ released: boolean }>(this.pool, RELEASE_HOLD, [holdId]);
    return released.rows[0]?.released === true;
  }

  /**
   * Releases the holds whose request stopped renewing them in a live process, and the holds without
   * a pending charge of instances that are gone (no heartbeat for instanceTimeoutMs, or none at all:
   * closed). The holds of gone instances that carry a pending charge stay, whatever their expiry, for
   * orphanedHolds to take over. Any instance may run this. Retired counters go too.
   */
  async expireHolds(now: number): Promise<number> {
    return inTransaction(this.pool, async (tx) => {
      // A margin for the instances' clocks: a counter retired while another instance still counts
      // its bucket would be missing from that instance's window.
      await tx.query('DELETE FROM usage_counters WHERE retires_at <= $1', [now - CLOCK_SKEW_MARGIN_MS]);
      // A running total is a cache of its counters (lq_window_sums sums them again when it is
      // missing), so dropping one is always safe: those of windows with no counter left go.
      await tx.query('DELETE FROM window_totals w WHERE NOT EXISTS (SELECT 1 FROM usage_counters u WHERE u.budget_key = w.budget_key)');
      const silentSince = now - this.options.instanceTimeoutMs;
      const expiring = `CASE WHEN ${INSTANCE_GONE} THEN h.pending IS NULL ELSE h.expires_at <= $1 AND h.claimed_at IS NULL END`;
      const ids = await lockHolds(tx, `SELECT h.id FROM holds h WHERE ${expiring}`, [now, silentSince, this.options.instanceId]);
      const expired = await deleteHolds(tx, ids);
      await tx.query('DELETE FROM instances WHERE heartbeat_at <= $1 AND id <> $2', [silentSince, this.options.instanceId]);
      return expired;
    });
  }

  async listHolds(): Promise<Hold[]> {
    return (await query<HoldRow>(this.pool, 'SELECT * FROM holds ORDER BY created_at, id')).rows.map(toHold);
  }

  /**
   * Takes over the holds with a pending charge of instances that are gone, in one statement: each
   * becomes this instance's (FOR UPDATE SKIP LOCKED, so two instances recovering at once never take
   * the same one) and is handed out to be settled. Its row stays until that settle deletes it; should
   * the settle not go through, it is handed out again after RECLAIM_AFTER_MS, and should this
   * instance die first, another takes it over. The entry is unique per request: charged once.
   */
  async orphanedHolds(now: number): Promise<OrphanedHold[]> {
    const claimed = await query<HoldRow & { pending: string }>(
      this.pool,
      `UPDATE holds SET instance_id = $3, claimed_at = $1
       FROM (SELECT h.id FROM holds h
             WHERE h.pending IS NOT NULL AND (${INSTANCE_GONE} OR (h.instance_id = $3 AND h.claimed_at <= $4))
             ORDER BY h.created_at, h.id FOR UPDATE SKIP LOCKED) AS orphan
       WHERE holds.id = orphan.id
       RETURNING holds.*`,
      [now, now - this.options.instanceTimeoutMs, this.options.instanceId, now - RECLAIM_AFTER_MS],
    );
    return claimed.rows
      .sort((x, y) => x.created_at - y.created_at || (x.id < y.id ? -1 : 1))
      .map((r) => ({ hold: toHold(r), pending: JSON.parse(r.pending) as PendingCharge, deliveredTokens: r.delivered_tokens, updatedAt: r.updated_at }));
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
             RETURNING at, user_id, project_id, key_id, model, upstream, input_tokens, output_tokens, cached_tokens, cache_write_tokens,
               cache_write_1h_tokens, reasoning_tokens, cost_micros, latency_ms, source, saved_tokens, saved_micros
           ), rolled AS (
             INSERT INTO ledger_rollup (slot_at, user_id, project_id, key_id, model, upstream, requests, input_tokens, output_tokens,
               cached_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_micros, latency_ms, cache_hits,
               saved_tokens, saved_micros)
             SELECT (at / ${ROLLUP_SLOT_MS}) * ${ROLLUP_SLOT_MS}, user_id, COALESCE(project_id, ''), key_id, model, COALESCE(upstream, ''), COUNT(*),
               SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens),
               SUM(cost_micros), SUM(latency_ms), COUNT(*) FILTER (WHERE source = 'cache'), SUM(saved_tokens), SUM(saved_micros)
             FROM moved GROUP BY 1, 2, 3, 4, 5, 6
             ON CONFLICT (slot_at, user_id, project_id, key_id, model, upstream) DO UPDATE SET requests = ledger_rollup.requests + excluded.requests,
               input_tokens = ledger_rollup.input_tokens + excluded.input_tokens, output_tokens = ledger_rollup.output_tokens + excluded.output_tokens,
               cached_tokens = ledger_rollup.cached_tokens + excluded.cached_tokens,
               cache_write_tokens = ledger_rollup.cache_write_tokens + excluded.cache_write_tokens,
               cache_write_1h_tokens = ledger_rollup.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
               reasoning_tokens = ledger_rollup.reasoning_tokens + excluded.reasoning_tokens,
               cost_micros = ledger_rollup.cost_micros + excluded.cost_micros, latency_ms = ledger_rollup.latency_ms + excluded.latency_ms,
               cache_hits = ledger_rollup.cache_hits + excluded.cache_hits, saved_tokens = ledger_rollup.saved_tokens + excluded.saved_tokens,
               saved_micros = ledger_rollup.saved_micros + excluded.saved_micros
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
    const fired = await inTransaction(this.pool, async (tx) => {
      const recorded: AlertEvent[] = [];
      for (const spike of spikes) {
        const event = await this.alerts.recordAnomaly(tx, spike, config, now);
        if (event) recorded.push(event);
      }
      return recorded;
    });
    if (fired.length > 0) this.alertsRecorded();
    return fired;
  }

  /* ── reports ───────────────────────────────────────────────────────────── */

  async usageReport(q: UsageQuery): Promise<UsageRow[]> {
    const dimensions = typeof q.groupBy === 'string' ? [q.groupBy] : [...q.groupBy];
    return withClient(this.pool, async (db) => {
      const withRollup = ((await db.query('SELECT 1 FROM ledger_rollup WHERE slot_at >= $1 AND slot_at < $2 LIMIT 1', [q.from, q.to])).rowCount ?? 0) > 0;
      const byDay = dimensions.includes('day');
      const days = byDay ? localDays(q.from, q.to, q.timeZone) : [];
      const user = q.userId === undefined ? [] : [q.userId];
      const range = [q.from, q.to, ...user];
      const found = byDay
        ? await db.query<Record<string, string | number>>(
            usageSql(dimensions, withRollup, 'unnest($1::int[], $2::bigint[], $3::bigint[]) AS d(id, start_at, end_at)', user.length > 0 ? '$4' : null),
            [days.map((_, i) => i), days.map((d) => d.start), days.map((d) => d.end), ...user],
          )
        : await db.query<Record<string, string | number>>(numbered(usageSql(dimensions, withRollup, undefined, user.length > 0 ? '?' : null)), withRollup ? [...range, ...range] : range);
      return toUsageRows(found.rows, dimensions, days);
    });
  }

  async recentEntries(limit: number, userId?: string): Promise<LedgerEntry[]> {
    const found =
      userId === undefined
        ? await query<LedgerRow>(this.pool, 'SELECT * FROM ledger ORDER BY id DESC LIMIT $1', [limit])
        : await query<LedgerRow>(this.pool, 'SELECT * FROM ledger WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2', [userId, limit]);
    return found.rows.map(toEntry);
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

  /** A delivery an instance is sending right now keeps its lease: it is not sent twice at once. */
  async retryDeliveries(alertId: string, now: number): Promise<number | null> {
    const pending = await withClient(this.pool, async (db) => {
      if ((await db.query('SELECT 1 FROM alerts WHERE id = $1', [alertId])).rowCount === 0) return null;
      return (await db.query(`UPDATE alert_deliveries SET next_attempt_at = $1 WHERE alert_id = $2 AND state = 'pending'`, [now, alertId])).rowCount ?? 0;
    });
    if (pending !== null && pending > 0) this.alertsRecorded();
    return pending;
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

  /* ── grants ────────────────────────────────────────────────────────────── */

  async createGrant(input: GrantInput, now: number): Promise<Grant> {
    const grant: Grant = { ...input, id: `grant_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`, createdAt: now };
    await query(
      this.pool,
      `INSERT INTO grants (id, budget_key, scope, tokens, micros, starts_at, ends_at, decided_by, request_id, reason, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [grant.id, grant.budgetKey, formatScope(grant.scope), grant.tokens, grant.micros, grant.startsAt, grant.endsAt, grant.decidedBy, grant.requestId, grant.reason, grant.createdAt],
    );
    // Every instance's next metering call finds its scope's fingerprint changed and reads it.
    this.budgetCache.clear();
    return grant;
  }

  async listGrants(query_: { scope?: string; activeAt?: number }): Promise<Grant[]> {
    const rows = await query<GrantRow>(
      this.pool,
      `SELECT * FROM grants WHERE ($1::text IS NULL OR scope = $1) AND ($2::bigint IS NULL OR (starts_at <= $2 AND $2 < ends_at))
       ORDER BY created_at DESC, id DESC`,
      [query_.scope ?? null, query_.activeAt ?? null],
    );
    return rows.rows.map(toGrant);
  }

  /* ── increase requests ─────────────────────────────────────────────────── */

  async createQuotaRequest(input: QuotaRequestInput, now: number, notice?: RequestNotice): Promise<Created<QuotaRequest>> {
    const request = newRequest(input, newId('req'), now);
    let alerted = false;
    const created = await inTransaction(this.pool, async (tx): Promise<Created<QuotaRequest>> => {
      alerted = false;
      if ((await tx.query('SELECT 1 FROM users WHERE id = $1', [input.userId])).rowCount === 0) return { ok: false, reason: 'missing-reference', field: 'userId' };
      if (!(await insertRequest(tx, request))) return { ok: false, reason: 'exists', field: 'budgetKey' };
      const event = notice?.(request, null);
      alerted = event != null && (await this.alerts.recordRequest(tx, event, now));
      return { ok: true, value: request };
    });
    if (alerted) this.alertsRecorded();
    return created;
  }

  async getQuotaRequest(id: string): Promise<QuotaRequest | null> {
    return withClient(this.pool, (client) => getRequest(client, id));
  }

  async listQuotaRequests(q: { state?: QuotaRequestState; userId?: string }): Promise<QuotaRequest[]> {
    return withClient(this.pool, (client) => listRequests(client, q.state ?? null, q.userId ?? null));
  }

  async decideQuotaRequest(id: string, decision: RequestDecision, now: number, notice?: RequestNotice): Promise<Decided> {
    let alerted = false;
    const result = await inTransaction(this.pool, async (tx): Promise<Decided> => {
      alerted = false;
      const request = await getRequest(tx, id);
      if (!request) return { ok: false, reason: 'not-found' };
      if (request.state !== 'open') return { ok: false, reason: 'not-open', request };
      const grant = grantOf(request, decision, now);
      const after = decided(request, decision, grant, now);
      // The state change is the gate: a concurrent decision that got here first leaves nothing to update.
      if (!(await decideRequest(tx, after))) return { ok: false, reason: 'not-open', request: (await getRequest(tx, id)) ?? request };
      if (grant) {
        await tx.query(
          `INSERT INTO grants (id, budget_key, scope, tokens, micros, starts_at, ends_at, decided_by, request_id, reason, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [grant.id, grant.budgetKey, formatScope(grant.scope), grant.tokens, grant.micros, grant.startsAt, grant.endsAt, grant.decidedBy, grant.requestId, grant.reason, grant.createdAt],
        );
      }
      const event = notice?.(after, grant);
      alerted = event != null && (await this.alerts.recordRequest(tx, event, now));
      return { ok: true, request: after, grant };
    });
    // As createGrant: every instance's next metering call finds the scope's fingerprint changed.
    if (result.ok && result.grant) this.budgetCache.clear();
    if (alerted) this.alertsRecorded();
    return result;
  }

  async unseenDecisions(userId: string): Promise<QuotaRequest[]> {
    return withClient(this.pool, (client) => unseenRequests(client, userId));
  }

  async markRequestSeen(ids: readonly string[], now: number): Promise<string[]> {
    if (ids.length === 0) return [];
    return withClient(this.pool, (client) => seeRequests(client, ids, now));
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
   * Leaves the cluster, at once rather than when the others notice the silence: its heartbeat row
   * goes, and with it the holds without a pending charge. The holds of requests still running that
   * carry one stay, for another instance (or the next to start) to settle at their last count.
   */
  async close(): Promise<void> {
    await Promise.all([this.admissions.drain(), this.settles.drain()]);
    try {
      await inTransaction(this.pool, async (tx) => {
        await deleteHolds(tx, await lockHolds(tx, 'SELECT h.id FROM holds h WHERE h.instance_id = $1 AND h.pending IS NULL', [this.options.instanceId]));
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
