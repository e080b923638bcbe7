/**
 * Queries over the ledger and its rollup that SQLite and PostgreSQL run word for word (`?`
 * placeholders; the PostgreSQL store numbers them). Each reads both tables: entries past retention
 * live on in ledger_rollup, and a total budget or an alert's top consumers must still count them.
 */

/** The ledger column a scope's usage is found under (global: every row). */
export const SCOPE_COLUMN = { user: 'user_id', project: 'project_id', key: 'key_id', upstream: 'upstream' } as const;

export type ScopeColumn = (typeof SCOPE_COLUMN)[keyof typeof SCOPE_COLUMN];

/**
 * tokens and micros of one scope in [from, to), of every model or (`byModel`) of those a regular
 * expression matches (SQLite's lq_model_matches, see SqliteStore). Binds ([id,] [regexp,] from, to) twice.
 */
export function scopeSumsSql(column: ScopeColumn | null, byModel = false): string {
  const part = (table: string, at: string) =>
    `SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS tokens, COALESCE(SUM(cost_micros), 0) AS micros
     FROM ${table} WHERE ${column === null ? '' : `${column} = ? AND `}${byModel ? 'lq_model_matches(?, model) AND ' : ''}${at} >= ? AND ${at} < ?`;
  return `SELECT SUM(tokens) AS tokens, SUM(micros) AS micros FROM (${part('ledger', 'at')} UNION ALL ${part('ledger_rollup', 'slot_at')}) AS sums`;
}

/** The three biggest users or models of a scope in [from, to), by tokens or cost. Binds ([id,] from, to) twice. */
export function topConsumersSql(column: ScopeColumn | null, kind: 'user' | 'model', unit: 'tokens' | 'usd'): string {
  const part = (table: string, at: string) =>
    `SELECT ${kind === 'user' ? 'user_id' : 'model'} AS id, input_tokens + output_tokens AS tokens, cost_micros AS micros
     FROM ${table} WHERE ${column === null ? '' : `${column} = ? AND `}${at} >= ? AND ${at} < ?`;
  return `SELECT id, SUM(tokens) AS tokens, SUM(micros) AS micros FROM (${part('ledger', 'at')} UNION ALL ${part('ledger_rollup', 'slot_at')}) AS u
     GROUP BY id ORDER BY ${unit === 'usd' ? 'micros' : 'tokens'} DESC, id LIMIT 3`;
}

/**
 * Per subject of one kind: tokens in the last hour and in the baseline before it, for subjects
 * over the floor in the last hour. Binds (hourAgo, hourAgo, from, to, from, to, hourAgo, minTokens).
 */
export function spikeUsageSql(column: ScopeColumn): string {
  const last = 'SUM(CASE WHEN t >= ? THEN tokens ELSE 0 END)';
  return `SELECT id, ${last} AS last, SUM(CASE WHEN t < ? THEN tokens ELSE 0 END) AS base
     FROM (SELECT ${column} AS id, at AS t, input_tokens + output_tokens AS tokens FROM ledger WHERE at >= ? AND at < ?
           UNION ALL
           SELECT ${column}, slot_at, input_tokens + output_tokens FROM ledger_rollup WHERE slot_at >= ? AND slot_at < ?) AS u
     WHERE id IS NOT NULL AND id <> '' GROUP BY id HAVING ${last} > ?`;
}

/** The arguments of spikeUsageSql. */
export const spikeUsageArgs = (hourAgo: number, from: number, to: number, minTokens: number): number[] => [hourAgo, hourAgo, from, to, from, to, hourAgo, minTokens];
