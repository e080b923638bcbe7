import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import type { AlertOptions } from '../../alerts/alert-planning.js';
import type { DefaultBudget } from '../../config/schema.js';
import { PostgresStore } from '../postgres/postgres-store.js';
import { quoteIdent } from '../postgres/pg-pool.js';
import { SqliteStore } from '../sqlite/sqlite-store.js';
import type { Store } from '../types.js';

/** PostgreSQL for tests: on this machine, trust auth (`.ci/run` starts it when it is not running). */
export const TEST_DATABASE_URL = process.env.LQ_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

interface Sums {
  tokens: number;
  micros: number;
}

/** A counter beside the ledger sum it stands for; `cached` is the in-memory copy (SQLite only). */
export interface CounterAuditRow {
  budgetKey: string;
  bucketStart: number;
  stored: Sums | null;
  cached: Sums | null;
  ledger: Sums;
}

/** A store the shared suites can audit. */
export type AuditedStore = Store & {
  counterAudit(): CounterAuditRow[] | Promise<CounterAuditRow[]>;
  /** Retention in batches of `batchSize` (tests use small ones, so a quarter hour spans two). */
  rollUpLedger(before: number, batchSize?: number): Promise<number>;
};

export interface OpenOptions {
  defaultBudgets?: DefaultBudget[];
  defaultThresholds?: number[];
  alerts?: AlertOptions;
}

export interface StoreKind {
  name: 'sqlite' | 'postgres';
  /** An empty store. */
  open(options?: OpenOptions): Promise<AuditedStore>;
  /** An empty store alive since `startedAt`, whose process is then lost (see Crashable). */
  crashable(options: OpenOptions, startedAt: number): Promise<Crashable>;
}

/** How long a PostgreSQL instance may be silent before the others count it as gone, in these tests. */
export const INSTANCE_TIMEOUT_MS = 15_000;

export interface Crashable {
  store: AuditedStore;
  /**
   * The first store's process dies (after its commit of the current turn, a turn of the event loop
   * later), and another process opens the same data at `now`: SQLite, a store on the same file, the
   * first dropped without a close; PostgreSQL, a new instance, the first silent since `startedAt`
   * (`now` must be INSTANCE_TIMEOUT_MS past it). Each call opens another (on PostgreSQL, several
   * instances may then recover at once).
   */
  successor(now: number): Promise<AuditedStore>;
}

/** A schema of its own for one test file, so files running in parallel never see each other's rows. */
export const testSchemaName = (): string => `lq_test_${randomBytes(6).toString('hex')}`;

const TABLES = 'meta, projects, users, user_external_ids, api_keys, budgets, scope_locks, usage_counters, window_totals, instances, holds, hold_budgets, budget_reservations, ledger, alerts, alert_deliveries, ledger_rollup, rate_limits, rate_counters, grants, quota_requests';

/** Options of a PostgreSQL store in a test schema; several may share it, as instances would. */
export interface PostgresTestOptions extends OpenOptions {
  instanceId?: string;
  instanceTimeoutMs?: number;
  /** Another route to the same database (e.g. through a forwarder that a test cuts). */
  url?: string;
  connectTimeoutMs?: number;
}

export interface PostgresTestSchema {
  schema: string;
  open(options?: PostgresTestOptions): Promise<PostgresStore>;
  /** Empties every table (the schema is migrated by the first open). */
  reset(): Promise<void>;
}

/**
 * One schema for a test file, dropped after it; stores opened in it are closed after each test.
 * Call at the top level of a test file.
 */
export function postgresTestSchema(): PostgresTestSchema {
  const schema = testSchemaName();
  const admin = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 1 });
  const open: PostgresStore[] = [];
  let migrated = false;
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => undefined);
  });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    await admin.end();
  });
  return {
    schema,
    async open(o = {}) {
      const store = await PostgresStore.open({
        url: o.url ?? TEST_DATABASE_URL,
        schema,
        poolSize: 4,
        statementTimeoutMs: 10_000,
        connectTimeoutMs: o.connectTimeoutMs ?? 5_000,
        defaultBudgets: o.defaultBudgets ?? [],
        defaultThresholds: o.defaultThresholds ?? [50, 80, 90, 95, 100],
        ...(o.alerts ? { alerts: o.alerts } : {}),
        instanceId: o.instanceId ?? `test-${randomBytes(4).toString('hex')}`,
        instanceTimeoutMs: o.instanceTimeoutMs ?? 30_000,
      });
      migrated = true;
      open.push(closeOnce(store));
      return store;
    },
    async reset() {
      if (!migrated) return;
      await admin.query(`TRUNCATE ${TABLES.split(', ').map((t) => `${quoteIdent(schema)}.${t}`).join(', ')} RESTART IDENTITY CASCADE`);
    },
  };
}

/** Closing twice (the test, then afterEach) must not end a pool twice. */
function closeOnce<T extends Store>(store: T): T {
  const close = store.close.bind(store);
  let closed = false;
  store.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  return store;
}

/**
 * Both stores, for `describe.each`: the same suite runs against SQLite (in memory) and PostgreSQL
 * (this file's own schema, emptied before each store is opened and dropped after the file). Stores
 * a test leaves open are closed after it. Call at the top level of a test file.
 */
export function storeKinds(): StoreKind[] {
  const postgres = postgresTestSchema();
  const open: Store[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => undefined);
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const openSqlite = (file: string, o: OpenOptions) => {
    const store = closeOnce(
      SqliteStore.open({
        file,
        defaultBudgets: o.defaultBudgets ?? [],
        defaultThresholds: o.defaultThresholds ?? [50, 80, 90, 95, 100],
        ...(o.alerts ? { alerts: o.alerts } : {}),
      }),
    );
    open.push(store);
    return store;
  };
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
  return [
    {
      name: 'sqlite',
      open: async (o = {}) => openSqlite(':memory:', o),
      crashable: async (o) => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-crash-'));
        dirs.push(dir);
        const file = path.join(dir, 'lobe-quota.db');
        return {
          store: openSqlite(file, o),
          successor: async () => {
            await nextTurn();
            return openSqlite(file, o);
          },
        };
      },
    },
    {
      name: 'postgres',
      open: async (o = {}) => {
        await postgres.reset();
        return postgres.open(o);
      },
      crashable: async (o, startedAt) => {
        await postgres.reset();
        const first = await postgres.open({ ...o, instanceTimeoutMs: INSTANCE_TIMEOUT_MS });
        await first.heartbeat(startedAt);
        return {
          store: first,
          successor: async (now) => {
            if (now < startedAt + INSTANCE_TIMEOUT_MS) throw new Error('the first instance is not gone yet at this time');
            await nextTurn();
            const next = await postgres.open({ ...o, instanceTimeoutMs: INSTANCE_TIMEOUT_MS });
            await next.heartbeat(now);
            return next;
          },
        };
      },
    },
  ];
}
