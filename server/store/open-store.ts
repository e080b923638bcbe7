import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { AlertOptions } from '../alerts/alert-planning.js';
import type { Config } from '../config/load.js';
import { recoverHolds } from '../proxy/recover-holds.js';
import { failOpen } from './fail-open-store.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './types.js';

/** After this many missed heartbeats an instance counts as gone and its holds are released. */
const MISSED_HEARTBEATS = 3;

export interface OpenedStore {
  store: Store;
  /** For the banner, e.g. "SQLite: ./data/lobe-quota.db"; never a password. */
  description: string;
  /**
   * Hold upkeep for this store: on PostgreSQL, the heartbeat that keeps this instance's holds, then
   * expiry of stale holds (any instance's), then the settlement of the requests of instances that
   * died; on SQLite, the settlement of the requests the previous process died with (there are only
   * ever some on the first run, which main awaits before it serves), then expiry. `intervalMs` is
   * how often.
   */
  upkeep: { intervalMs: number; run(now: number): Promise<void> };
}

const announceRecovered = (settled: readonly unknown[]): void => {
  if (settled.length > 0) console.log(`lobe-quota: settled ${settled.length} request(s) cut off by the end of a process, at their last count`);
};

/** The host, port, database and schema of a postgres:// URL, without its credentials. */
export function describePostgres(url: string, schema: string): string {
  const u = new URL(url);
  return `PostgreSQL: ${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname} schema ${schema}`;
}

/** SQLite in dataDir, or PostgreSQL when DATABASE_URL (database.url) is set. */
export async function openStore(config: Config, alerts: AlertOptions, sqliteUpkeepMs: number): Promise<OpenedStore> {
  const db = config.database;
  if (db.url === null) {
    const file = path.join(config.dataDir, 'lobe-quota.db');
    const store = SqliteStore.open({
      file,
      defaultBudgets: config.defaultBudgets,
      defaultThresholds: config.alertThresholds,
      alerts,
      synchronous: db.sqliteSynchronous,
    });
    const run = async (now: number) => {
      announceRecovered(await recoverHolds(store, now));
      await store.expireHolds(now);
    };
    // The banner says so when every commit waits for the disk (the default does not).
    const description = `SQLite: ${file}${store.synchronous === 'full' ? ', synchronous full' : ''}`;
    return { store, description, upkeep: { intervalMs: sqliteUpkeepMs, run } };
  }
  const heartbeatMs = db.heartbeatSeconds * 1000;
  const postgres = await PostgresStore.open({
    url: db.url,
    schema: db.schema,
    poolSize: db.poolSize,
    statementTimeoutMs: db.statementTimeoutMs,
    connectTimeoutMs: db.connectTimeoutMs,
    defaultBudgets: config.defaultBudgets,
    defaultThresholds: config.alertThresholds,
    alerts,
    instanceId: `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    instanceTimeoutMs: MISSED_HEARTBEATS * heartbeatMs,
  });
  return {
    store: db.failOpen ? failOpen(postgres) : postgres,
    description: `${describePostgres(db.url, db.schema)}, instance ${postgres.instanceId}${db.failOpen ? ', fail-open' : ''}`,
    upkeep: {
      intervalMs: Math.min(heartbeatMs, sqliteUpkeepMs),
      run: async (now) => {
        await postgres.heartbeat(now);
        await postgres.expireHolds(now);
        // The store itself, not its fail-open face: a recovery that cannot be written must stay.
        announceRecovered(await recoverHolds(postgres, now));
      },
    },
  };
}
