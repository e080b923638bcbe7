// `npm run bench:reports`: latency of the usage report (`SqliteStore.usageReport`, what
// GET /admin/usage runs) over a month of a 1M-row ledger, per grouping. Each grouping runs with the
// report index of migration 3 and again after swapping it back for the plain `ledger(at)` index,
// so both figures come from the same process and the same data.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SqliteStore } from '../server/store/sqlite/sqlite-store.js';
import type { UsageGroupBy } from '../server/store/types.js';
import { fmt, median } from './figures.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '7' },
  },
});
const ROWS = Number(args.rows);
const ROUNDS = Number(args.rounds);

const USERS = 200;
const PROJECTS = 20;
const MODELS = 7;
const NOW = Date.parse('2026-11-22T12:00:00Z');
const SPAN_MS = 60 * 86_400_000;
const ZONE = 'Asia/Shanghai';
/** October in Shanghai: about half of the 60 days the ledger covers. */
const FROM = Date.parse('2026-10-01T00:00:00+08:00');
const TO = Date.parse('2026-11-01T00:00:00+08:00');

const GROUPINGS: UsageGroupBy[][] = [['user'], ['model'], ['user', 'model'], ['day'], ['day', 'model']];


/** A migrated database whose ledger holds `rows` entries spread evenly over the 60 days before NOW. */
async function seed(file: string): Promise<number> {
  await SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] }).close();
  const started = performance.now();
  const db = new Database(file);
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
     INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens,
       cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
     SELECT 'seed-' || i, ? - (i * ?) / ?, 'u' || (i % ${USERS}), 'p' || ((i % ${USERS}) % ${PROJECTS}), 'key_u' || (i % ${USERS}),
       'model-' || (i % ${MODELS}), 400 + i % 300, 150 + i % 200, i % 100, 0, 90 + i % 50, 'upstream', 'ok', 800
     FROM n`,
  ).run(ROWS, NOW, SPAN_MS, ROWS);
  db.close();
  return performance.now() - started;
}

async function measure(store: SqliteStore, groupBy: UsageGroupBy[]): Promise<{ ms: number; rows: number }> {
  const times: number[] = [];
  let rows = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now();
    rows = (await store.usageReport({ groupBy, from: FROM, to: TO, timeZone: ZONE })).length;
    times.push(performance.now() - started);
  }
  return { ms: median(times), rows };
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-reports-'));
  const file = path.join(dir, 'lobe-quota.db');
  try {
    const seedMs = await seed(file);
    const open = () => SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] });

    let store = open();
    const withIndex = new Map<string, { ms: number; rows: number }>();
    for (const g of GROUPINGS) withIndex.set(g.join(','), await measure(store, g));
    await store.close();

    // "Before": the ledger as migrations 1–2 left it, with only ledger(at) to find the range.
    const db = new Database(file);
    db.exec('CREATE INDEX ledger_at ON ledger(at); DROP INDEX ledger_report; ANALYZE;');
    db.close();
    store = open();
    const withoutIndex = new Map<string, { ms: number; rows: number }>();
    for (const g of GROUPINGS) withoutIndex.set(g.join(','), await measure(store, g));
    await store.close();

    console.log(`command: npm run bench:reports -- --rows ${ROWS} --rounds ${ROUNDS}`);
    console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, node ${process.version}`);
    console.log(
      `ledger: ${fmt(ROWS)} rows over 60 days (${USERS} users, ${PROJECTS} projects, ${MODELS} models); ` +
        `report range: October in ${ZONE} (${fmt((ROWS * (TO - FROM)) / SPAN_MS)} rows)`,
    );
    console.log(`\nusageReport latency, median of ${ROUNDS} runs:`);
    console.log(`  ${'groupBy'.padEnd(12)} ${'result rows'.padStart(11)}  ${'report index'.padStart(12)}  ${'ledger(at) only'.padStart(15)}`);
    for (const g of GROUPINGS) {
      const key = g.join(',');
      const a = withIndex.get(key) as { ms: number; rows: number };
      const b = withoutIndex.get(key) as { ms: number; rows: number };
      console.log(`  ${key.padEnd(12)} ${fmt(a.rows).padStart(11)}  ${`${fmt(a.ms, 1)} ms`.padStart(12)}  ${`${fmt(b.ms, 1)} ms`.padStart(15)}  (${fmt(b.ms / a.ms, 1)}× faster)`);
    }
    console.log(`\n(ledger of ${fmt(ROWS)} rows loaded in ${fmt(seedMs / 1000, 1)} s)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
