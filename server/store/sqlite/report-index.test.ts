import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { UsageGroupBy } from '../types.js';
import { SqliteStore } from './sqlite-store.js';
import { REPORT_DAYS_DDL, usageSql } from '../sql/usage-sql.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function migratedDb(): Promise<Database.Database> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-report-index-'));
  dirs.push(dir);
  const file = path.join(dir, 'lobe-quota.db');
  await SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] }).close();
  const db = new Database(file);
  db.exec(REPORT_DAYS_DDL);
  return db;
}

const plan = (db: Database.Database, dimensions: UsageGroupBy[]): string =>
  (db.prepare(`EXPLAIN QUERY PLAN ${usageSql(dimensions)}`).all(...(dimensions.includes('day') ? [] : [0, 1])) as Array<{ detail: string }>)
    .map((p) => p.detail)
    .join(' | ');

describe('migration 3 and the report query plans', () => {
  it('replaces ledger(at) with an index that covers a report, so a report never reads ledger rows', async () => {
    const db = await migratedDb();
    try {
      expect(db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(3);
      const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger'").all() as Array<{ name: string }>).map((r) => r.name);
      expect(indexes).toContain('ledger_report');
      expect(indexes).not.toContain('ledger_at');
      for (const dimensions of [['user'], ['project', 'key'], ['user', 'model'], ['day', 'model'], ['model', 'day']] as UsageGroupBy[][]) {
        expect(plan(db, dimensions), dimensions.join(',')).toContain('USING COVERING INDEX ledger_report (at>? AND at<?)');
      }
      // By day alone: the days' own order groups the rows, with no sort of the ledger's rows.
      expect(plan(db, ['day'])).not.toContain('TEMP B-TREE FOR GROUP BY');
    } finally {
      db.close();
    }
  });
});
