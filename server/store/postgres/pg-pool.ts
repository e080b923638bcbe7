import pg from 'pg';
import { StoreUnavailableError } from '../store-unavailable.js';

export interface PgConnectionOptions {
  /** postgres://user@host:port/database */
  url: string;
  /** The schema every table lives in (created if missing); each test suite gets its own. */
  schema: string;
  poolSize: number;
  /** Server-side limit on any one statement, so a stuck query cannot hold a request (or a lock) for long. */
  statementTimeoutMs: number;
  /** How long to wait for a connection before the attempt counts as failed. */
  connectTimeoutMs: number;
}

/** Failed attempts are retried this many times, after these pauses, before the store gives up. */
const RETRY_DELAYS_MS = [100, 400];

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * BIGINT and NUMERIC (what SUM of a BIGINT returns) come back as numbers: every amount here is an
 * integer of tokens or micro-dollars, far below 2^53 — and one that is not is an error, never a
 * silently rounded balance.
 */
const safeInteger = (text: string): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`database value ${text} is not a safe integer`);
  return n;
};

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID || oid === NUMERIC_OID ? safeInteger : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

export function createPool(options: PgConnectionOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    // A transaction left open by a crashed request must not keep its row locks.
    idle_in_transaction_session_timeout: Math.max(10_000, options.statementTimeoutMs * 2),
    options: `-c search_path=${quoteIdent(options.schema)}`,
    types,
    application_name: 'lobe-quota',
  });
  // An idle client that loses its connection is dropped by the pool; without a listener the error
  // would crash the process.
  pool.on('error', (error) => console.error('[lobe-quota] PostgreSQL connection lost:', error.message));
  return pool;
}

/** `?` placeholders (the SQL shared with SQLite) to PostgreSQL's `$1, $2, …`. */
export const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', '57P01', '57P02', '57P03']);

/** The database is away (not the query's fault): worth retrying, and a 503 when it stays away. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  // node-postgres reports a dropped or never-made connection by message only.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED/.test(error.message);
}

/** Another transaction won a lock race: running again is the whole remedy. */
const isRetryableConflict = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
};

/** `statement_timeout` fired: the database is too slow to answer, which a caller treats like away. */
const isStatementTimeout = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === '57014';

export type Tx = pg.PoolClient;

/**
 * Runs `work` in one transaction, retried when the database is briefly away or a deadlock broke
 * it. Never retried once COMMIT was sent (its outcome is then unknown); a request that cannot be
 * written after the retries gets a StoreUnavailableError. Errors of the data (a CHECK failing) pass
 * through unchanged.
 */
export function inTransaction<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  return run(pool, work, true);
}

/** Several statements on one connection without a transaction (reads), with the same retries. */
export function withClient<T>(pool: pg.Pool, work: (client: Tx) => Promise<T>): Promise<T> {
  return run(pool, work, false);
}

async function run<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>, transaction: boolean): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let client: pg.PoolClient | undefined;
    let committing = false;
    // A connection that drops between two statements is reported as an 'error' event on the
    // client: the statement that follows fails and is handled below; the event must not crash us.
    const ignoreDrop = () => undefined;
    try {
      client = await pool.connect();
      client.on('error', ignoreDrop);
      if (transaction) await client.query('BEGIN');
      const result = await work(client);
      committing = true;
      if (transaction) await client.query('COMMIT');
      client.off('error', ignoreDrop);
      client.release();
      return result;
    } catch (error) {
      if (client) {
        const broken = isConnectionError(error);
        if (transaction && !broken && !committing) await client.query('ROLLBACK').catch(() => undefined);
        client.off('error', ignoreDrop);
        client.release(broken ? (error as Error) : undefined);
      }
      const transient = isConnectionError(error) || isRetryableConflict(error) || isStatementTimeout(error);
      if (!transient) throw error;
      if ((transaction && committing) || attempt >= RETRY_DELAYS_MS.length) {
        if (isRetryableConflict(error)) throw error;
        throw new StoreUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, error);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
    }
  }
}

/** One statement outside a transaction, with the same retries as `inTransaction`. */
/**
 * A statement of the hot path, prepared once per connection under its name: node-postgres then sends
 * only its arguments, and PostgreSQL neither parses nor plans it again (GET /quota's in-process
 * handler: 1.9 → 1.16 ms with the one-statement read, BENCHMARKS.md). The name stands for this text alone.
 */
export interface Prepared {
  name: string;
  text: string;
}

export type Statement = string | Prepared;

/** node-postgres's query arguments for a statement. */
export const queryConfig = (statement: Statement, values: unknown[]): pg.QueryConfig =>
  typeof statement === 'string' ? { text: statement, values } : { name: statement.name, text: statement.text, values };

export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, sql: Statement, args: unknown[] = []): Promise<pg.QueryResult<R>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await pool.query<R>(queryConfig(sql, args));
    } catch (error) {
      const transient = isConnectionError(error) || isStatementTimeout(error);
      if (!transient) throw error;
      if (attempt >= RETRY_DELAYS_MS.length) throw new StoreUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, error);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
    }
  }
}

/** node-postgres refuses a statement on a connection it already knows is broken: nothing was sent. */
const NOT_SENT = /not queryable|Client was closed/;

/**
 * One statement that changes data, as a transaction of its own. Retried only when it surely did not
 * run: no connection could be made, nothing was sent, or it was cancelled (statement timeout) or
 * chosen as a deadlock victim. A connection lost while it ran leaves its outcome unknown, as a COMMIT
 * without an answer does in `inTransaction`: StoreUnavailableError at once, never a second run.
 */
export async function applyOnce<R extends pg.QueryResultRow>(pool: pg.Pool, sql: Statement, args: unknown[]): Promise<pg.QueryResult<R>> {
  for (let attempt = 0; ; attempt++) {
    let sent = false;
    try {
      const client = await pool.connect();
      // As in `run`: a drop mid-statement is reported by the statement, the event must not crash us.
      const ignoreDrop = () => undefined;
      client.on('error', ignoreDrop);
      try {
        sent = true;
        const result = await client.query<R>(queryConfig(sql, args));
        client.off('error', ignoreDrop);
        client.release();
        return result;
      } catch (error) {
        if (isConnectionError(error) && NOT_SENT.test((error as Error).message)) sent = false;
        client.off('error', ignoreDrop);
        client.release(isConnectionError(error) ? (error as Error) : undefined);
        throw error;
      }
    } catch (error) {
      const unknownOutcome = sent && isConnectionError(error);
      const retryable = !unknownOutcome && (isConnectionError(error) || isRetryableConflict(error) || isStatementTimeout(error));
      if (!retryable && !unknownOutcome) throw error;
      if (unknownOutcome || attempt >= RETRY_DELAYS_MS.length) {
        if (isRetryableConflict(error)) throw error;
        throw new StoreUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, error);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
    }
  }
}
