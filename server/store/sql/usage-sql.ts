import type { UsageGroupBy, UsageRow } from '../types.js';
import type { LocalDay } from './local-day.js';

/**
 * The temp table of a report's local days (see localDays). Rows are numbered in date order, and
 * the INTEGER PRIMARY KEY lets SQLite walk the days in that order and range-scan the ledger's
 * report index once per day: a report led by day then needs no sort at all (measured in
 * bench/reports.bench.ts: about half the time of grouping by a computed day).
 */
export const REPORT_DAYS_DDL = 'CREATE TEMP TABLE IF NOT EXISTS report_days (id INTEGER PRIMARY KEY, start_at INTEGER NOT NULL, end_at INTEGER NOT NULL)';

/** The days of a report as SQLite reads them; PostgreSQL passes its own row source aliased `d`. */
const REPORT_DAYS = 'temp.report_days d';

const COLUMNS: Record<UsageGroupBy, string> = {
  user: 'l.user_id',
  project: "COALESCE(l.project_id, '')",
  key: 'l.key_id',
  model: 'l.model',
  day: 'd.id',
};

/** The sums of a report, per row of the ledger (`l`) or of its rollup (`r`, already summed). */
const SUMS = {
  ledger: `COUNT(*) AS "requests", SUM(l.input_tokens) AS "inputTokens", SUM(l.output_tokens) AS "outputTokens",
      SUM(l.cached_tokens) AS "cachedTokens", SUM(l.cache_write_tokens) AS "cacheWriteTokens", SUM(l.reasoning_tokens) AS "reasoningTokens",
      SUM(l.input_tokens + l.output_tokens) AS "totalTokens", SUM(l.cost_micros) AS "costMicros",
      SUM(CASE WHEN l.source = 'cache' THEN 1 ELSE 0 END) AS "cacheHits", SUM(l.saved_tokens) AS "savedTokens", SUM(l.saved_micros) AS "savedMicros"`,
  rollup: `SUM(l.requests) AS "requests", SUM(l.input_tokens) AS "inputTokens", SUM(l.output_tokens) AS "outputTokens",
      SUM(l.cached_tokens) AS "cachedTokens", SUM(l.cache_write_tokens) AS "cacheWriteTokens", SUM(l.reasoning_tokens) AS "reasoningTokens",
      SUM(l.input_tokens + l.output_tokens) AS "totalTokens", SUM(l.cost_micros) AS "costMicros",
      SUM(l.cache_hits) AS "cacheHits", SUM(l.saved_tokens) AS "savedTokens", SUM(l.saved_micros) AS "savedMicros"`,
};

/**
 * One pass over the ledger's report index for one or two dimensions, as g0 (and g1) plus the sums.
 * Binds (from, to) without `day`; with it, the range is the days' (`days`, aliased d, with id,
 * start_at and end_at) and nothing is bound. The SQL is the same for SQLite and PostgreSQL.
 *
 * With `withRollup` (retention has rolled up entries in the report's range), the ledger's pass and
 * one over ledger_rollup are each grouped, then merged: the ledger's part keeps its covering index,
 * and the outer GROUP BY only sees already grouped rows. It then binds (from, to) twice.
 *
 * With `userParam` (the placeholder of a user id: `?`, or `$4` where the caller numbers its own),
 * only that user's rows are summed; a `?` binds the user after each part's (from, to), or alone
 * per part in a report by day.
 */
export function usageSql(dimensions: readonly UsageGroupBy[], withRollup = false, days = REPORT_DAYS, userParam: string | null = null): string {
  const groups = dimensions.map((d, i) => `${COLUMNS[d]} AS g${i}`).join(', ');
  const keys = dimensions.map((_, i) => `g${i}`).join(', ');
  const byDay = dimensions.includes('day');
  const ofUser = userParam === null ? '' : `${byDay ? ' WHERE' : ' AND'} l.user_id = ${userParam}`;
  const source = (byDay ? `${days} JOIN ledger l ON l.at >= d.start_at AND l.at < d.end_at` : 'ledger l WHERE l.at >= ? AND l.at < ?') + ofUser;
  // Biggest spenders first; a report led by day reads as a time series instead.
  const order = dimensions[0] === 'day' ? `g0, "costMicros" DESC, "totalTokens" DESC, ${keys}` : `"costMicros" DESC, "totalTokens" DESC, ${keys}`;
  const ledgerPart = `SELECT ${groups}, ${SUMS.ledger} FROM ${source} GROUP BY ${keys}`;
  if (!withRollup) return `${ledgerPart} ORDER BY ${order}`;
  // A slot belongs to the range its start is in: exact when the range is on quarter hours.
  const rollupSource =
    (byDay ? `${days} JOIN ledger_rollup l ON l.slot_at >= d.start_at AND l.slot_at < d.end_at` : 'ledger_rollup l WHERE l.slot_at >= ? AND l.slot_at < ?') + ofUser;
  const rollupPart = `SELECT ${groups}, ${SUMS.rollup} FROM ${rollupSource} GROUP BY ${keys}`;
  return `SELECT ${keys}, SUM("requests") AS "requests", SUM("inputTokens") AS "inputTokens", SUM("outputTokens") AS "outputTokens",
      SUM("cachedTokens") AS "cachedTokens", SUM("cacheWriteTokens") AS "cacheWriteTokens", SUM("reasoningTokens") AS "reasoningTokens",
      SUM("totalTokens") AS "totalTokens",
      SUM("costMicros") AS "costMicros", SUM("cacheHits") AS "cacheHits", SUM("savedTokens") AS "savedTokens", SUM("savedMicros") AS "savedMicros"
    FROM (${ledgerPart} UNION ALL ${rollupPart}) AS parts GROUP BY ${keys} ORDER BY ${order}`;
}

/** The rows of usageSql as reports read them: `day` groups (a day's number) named by their local date. */
export function toUsageRows(found: ReadonlyArray<Record<string, string | number>>, dimensions: readonly UsageGroupBy[], days: readonly LocalDay[]): UsageRow[] {
  return found.map((r) => {
    const values = dimensions.map((d, i) => (d === 'day' ? (days[r[`g${i}`] as number] as LocalDay).day : String(r[`g${i}`])));
    return {
      group: values[0] as string,
      groups: values,
      requests: r.requests as number,
      inputTokens: r.inputTokens as number,
      outputTokens: r.outputTokens as number,
      cachedTokens: r.cachedTokens as number,
      cacheWriteTokens: r.cacheWriteTokens as number,
      reasoningTokens: r.reasoningTokens as number,
      totalTokens: r.totalTokens as number,
      costMicros: r.costMicros as number,
      cacheHits: r.cacheHits as number,
      savedTokens: r.savedTokens as number,
      savedMicros: r.savedMicros as number,
    };
  });
}
