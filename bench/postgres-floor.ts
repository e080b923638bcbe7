// bench:postgres's floors for one reserve+settle pair at a time: the least any metering design on
// this schema must do per request, as two bare statements on one connection.
//
// `writes`: the reservation locks the request's scope rows and writes its hold, and commits
// without waiting for the disk (as lq_meter_many does); the settle locks them again, writes the
// ledger row, adds to the budgets' newest counters and deletes the hold, and commits durably.
//
// `reads and writes`: the same, plus what lobe-quota's design reads and writes beside them. The
// reservation also reads each budget's newest counter, the rolling window's running total and the
// budgets' reservations, writes the hold with its shares of its budgets, and adds them to the
// budgets' reservations (migration 16); the settle also gives the shares back and adds to the
// running total. Its gap to lobe-quota is then the machinery around the rows: the functions'
// statements, decisions, versions, thresholds and answers, and the store's own work.
//
// Both lock the subjects' own scope rows, but write rows of their own: counters and running totals
// copied from the subjects' newest ones under keys no budget has, ledger rows, holds and
// reservations of users and budgets the directory does not have, of an instance of their own. The
// floors' counts in the store's would leave a rolling budget's running total short of its counters
// for the measurements after them.
import pg from 'pg';
import { formatScope, scopesOf, type RequestSubject } from '../server/quota/scope.js';
import { quoteIdent } from '../server/store/postgres/pg-pool.js';
import { timedRounds, type RatedRounds } from './figures.js';

const RESERVE = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true)),
  locked AS (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE)
  INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
  SELECT $2, 'bench-floor', 'floor-' || $3, 'floor-' || $4, 'floor-' || $5, 1500, 675, 1000, $6, $6::bigint + 600000, NULL, $6
  WHERE (SELECT count(*) FROM locked) >= 0 AND (SELECT count(*) FROM async) = 1`;

const SETTLE = `WITH locked AS (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE),
  gone AS (DELETE FROM holds WHERE id = $2),
  counted AS (UPDATE usage_counters c SET tokens = c.tokens + 700, micros = c.micros + 195
              FROM unnest($7::text[], $8::bigint[]) AS b(key, bucket) WHERE c.budget_key = b.key AND c.bucket_start = b.bucket)
  INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
    reasoning_tokens, cost_micros, source, outcome, latency_ms)
  SELECT $2, $6, 'floor-' || $3, 'floor-' || $4, 'floor-' || $5, 'gpt-4o-mini', 500, 200, 0, 0, 195, 'upstream', 'ok', 900
  WHERE (SELECT count(*) FROM locked) >= 0`;

/** The reservation's reads in lobe-quota's design, under the scope locks: each budget's newest counter, the running totals and the budgets' reservations. */
const RESERVATION_READS = `async AS (SELECT set_config('synchronous_commit', 'off', true)),
  locked AS MATERIALIZED (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE),
  used AS (SELECT COALESCE(SUM(c.tokens), 0) AS t FROM usage_counters c, unnest($7::text[], $8::bigint[]) AS b(key, bucket)
           WHERE c.budget_key = b.key AND c.bucket_start = b.bucket),
  totals AS (SELECT COALESCE(SUM(w.tokens), 0) AS t FROM window_totals w WHERE w.budget_key = ANY($9::text[])),
  reserved AS (SELECT COALESCE(SUM(r.tokens), 0) AS t FROM budget_reservations r WHERE r.budget_key = ANY($7::text[]))`;
/** The hold's insert waits for all of those reads. */
const AFTER_THE_READS = `(SELECT count(*) FROM locked) >= 0 AND (SELECT count(*) FROM async) = 1
      AND (SELECT t FROM used) + (SELECT t FROM totals) + (SELECT t FROM reserved) >= 0`;
/** The settle's writes beside the hold's: the counters, the running totals and the ledger row. */
const SETTLE_WRITES = `counted AS (UPDATE usage_counters c SET tokens = c.tokens + 700, micros = c.micros + 195
              FROM unnest($7::text[], $8::bigint[]) AS b(key, bucket) WHERE c.budget_key = b.key AND c.bucket_start = b.bucket),
  totalled AS (UPDATE window_totals w SET tokens = w.tokens + 700, micros = w.micros + 195 WHERE w.budget_key = ANY($9::text[]))
  INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
    reasoning_tokens, cost_micros, source, outcome, latency_ms)
  SELECT $2, $6, 'floor-' || $3, 'floor-' || $4, 'floor-' || $5, 'gpt-4o-mini', 500, 200, 0, 0, 195, 'upstream', 'ok', 900
  WHERE (SELECT count(*) FROM locked) >= 0`;

/** RESERVE with those reads, the hold written with its shares of its budgets, and the shares added to the reservations (migration 16). */
const RESERVE_READING = `WITH ${RESERVATION_READS},
  held AS (INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at,
      budget_keys, budget_tokens, budget_micros)
    SELECT $2, 'bench-floor', 'floor-' || $3, 'floor-' || $4, 'floor-' || $5, 1500, 675, 1000, $6, $6::bigint + 600000, NULL, $6,
      $7::text[], array_fill(1500::bigint, ARRAY[cardinality($7::text[])]), array_fill(675::bigint, ARRAY[cardinality($7::text[])])
    WHERE ${AFTER_THE_READS}
    RETURNING id)
  INSERT INTO budget_reservations (budget_key, tokens, micros) SELECT b.key, 1500, 675 FROM held, unnest($7::text[]) AS b(key) ORDER BY b.key
  ON CONFLICT (budget_key) DO UPDATE SET tokens = budget_reservations.tokens + excluded.tokens, micros = budget_reservations.micros + excluded.micros`;

/** SETTLE, giving the hold's shares back to the reservations and adding to the rolling window's running total. */
const SETTLE_READING = `WITH locked AS MATERIALIZED (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE),
  gone AS (DELETE FROM holds WHERE id = $2 RETURNING budget_keys, budget_tokens, budget_micros),
  unreserved AS (UPDATE budget_reservations r SET tokens = r.tokens - b.t, micros = r.micros - b.m
                 FROM gone g CROSS JOIN LATERAL unnest(g.budget_keys, g.budget_tokens, g.budget_micros) AS b(k, t, m)
                 WHERE r.budget_key = ANY($7::text[]) AND r.budget_key = b.k),
  ${SETTLE_WRITES}`;

/**
 * The same on a schema before migration 16 (a `--before` build's): the hold's shares as rows of
 * hold_budgets, whose triggers keep the reservations. Its figures are not printed; it keeps the
 * rounds between the builds' lone pairs alike.
 */
const RESERVE_READING_15 = `WITH ${RESERVATION_READS},
  held AS (INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
    SELECT $2, 'bench-floor', 'floor-' || $3, 'floor-' || $4, 'floor-' || $5, 1500, 675, 1000, $6, $6::bigint + 600000, NULL, $6
    WHERE ${AFTER_THE_READS}
    RETURNING id)
  INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros) SELECT held.id, b.key, 1500, 675 FROM held, unnest($7::text[]) AS b(key)`;
const SETTLE_READING_15 = `WITH locked AS MATERIALIZED (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE),
  unreserved AS (DELETE FROM hold_budgets WHERE hold_id = $2),
  gone AS (DELETE FROM holds WHERE id = $2),
  ${SETTLE_WRITES}`;

/** Which floor: the writes alone, or with the reads and reservation rows of lobe-quota's design (see the top). */
export type FloorKind = 'writes' | 'reads and writes';

/** The floors' statements on a schema whose holds carry their shares (migration 16), or not. */
const statements = (sharesOnHolds: boolean): Record<FloorKind, { reserve: string; settle: string }> => ({
  writes: { reserve: RESERVE, settle: SETTLE },
  'reads and writes': sharesOnHolds ? { reserve: RESERVE_READING, settle: SETTLE_READING } : { reserve: RESERVE_READING_15, settle: SETTLE_READING_15 },
});

interface FloorSubject {
  scopes: string[];
  subject: RequestSubject;
  /** The floor's copy of the newest counter of each of its budgets: [keys, bucket starts]. */
  counters: [string[], number[]];
  /** The floor's copies of its rolling budgets' running totals, by key. */
  totals: string[];
}

/** Numbers the floors' requests: one ledger entry each, whichever floor wrote it. */
let seq = 0;

/** The floors on one connection, set up once, their rounds timed in whatever order the bench takes them. */
export interface Floors {
  /** `rounds` timed rounds of `pairs` bare pairs one at a time, and the CPU a pair took here and in the backend. */
  pairs(kind: FloorKind, pairs: number, rounds: number): Promise<RatedRounds>;
  close(): Promise<void>;
}

/**
 * The floors on `schema`, opened after the store's own rounds, so that every budget has its
 * counters and running totals to copy.
 */
export async function openFloors(url: string, applicationName: string, schema: string, subjects: RequestSubject[]): Promise<Floors> {
  // Sequential scans off, as in lobe-quota's metering functions: with statistics taken while the
  // holds were few, a bare statement would otherwise read the whole table to find its one row.
  const db = new pg.Client({ connectionString: url, application_name: applicationName, options: `-c search_path=${quoteIdent(schema)} -c enable_seqscan=off` });
  await db.connect();
  const floorSubjects: FloorSubject[] = [];
  let sharesOnHolds: boolean;
  try {
    sharesOnHolds =
      (
        await db.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'holds' AND column_name = 'budget_keys'`, [
          schema,
        ])
      ).rowCount === 1;
    // A live instance's holds, so that no instance's sweep takes them for a gone one's.
    await db.query(
      `INSERT INTO instances (id, started_at, heartbeat_at) VALUES ('bench-floor', $1, $1::bigint + 86400000)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [Date.now()],
    );
    for (const subject of subjects) {
      const scopes = scopesOf(subject).map(formatScope);
      const { rows } = await db.query<{ budget_key: string; bucket_start: string }>(
        `INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
         SELECT DISTINCT ON (c.budget_key) 'floor-' || c.budget_key, c.bucket_start, c.bucket_end, c.retires_at, c.tokens, c.micros
         FROM usage_counters c WHERE split_part(c.budget_key, '|', 1) = ANY($1::text[]) ORDER BY c.budget_key, c.bucket_start DESC
         -- (The global budget's, shared, is copied once; the update answers with it for the others.)
         ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = usage_counters.tokens RETURNING budget_key, bucket_start`,
        [scopes],
      );
      const totals = await db.query<{ budget_key: string }>(
        `INSERT INTO window_totals (budget_key, bucket_start, tokens, micros, oldest_used)
         SELECT 'floor-' || w.budget_key, w.bucket_start, w.tokens, w.micros, w.oldest_used
         FROM window_totals w WHERE split_part(w.budget_key, '|', 1) = ANY($1::text[])
         ON CONFLICT (budget_key) DO UPDATE SET tokens = window_totals.tokens RETURNING budget_key`,
        [scopes],
      );
      floorSubjects.push({
        scopes,
        subject,
        counters: [rows.map((r) => r.budget_key), rows.map((r) => Number(r.bucket_start))],
        totals: totals.rows.map((r) => r.budget_key),
      });
    }
  } catch (error) {
    await db.end();
    throw error;
  }
  const run = async (kind: FloorKind, count: number) => {
    const { reserve, settle } = statements(sharesOnHolds)[kind];
    const reading = kind === 'reads and writes';
    for (let i = 0; i < count; i++) {
      const { scopes, subject, counters, totals } = floorSubjects[i % floorSubjects.length] as FloorSubject;
      const id = `floor-${process.pid}-${seq++}`;
      const now = Date.now();
      const who = [subject.userId, subject.projectId, subject.keyId];
      await db.query({ name: `floor-reserve-${kind}`, text: reserve, values: [scopes, id, ...who, now, ...(reading ? [...counters, totals] : [])] });
      await db.query({ name: `floor-settle-${kind}`, text: settle, values: [scopes, id, ...who, now, ...counters, ...(reading ? [totals] : [])] });
    }
  };
  const warm = new Set<FloorKind>();
  return {
    async pairs(kind, pairs, rounds) {
      // Untimed first: the statements are prepared, and their plans made.
      if (!warm.has(kind)) await run(kind, 100);
      warm.add(kind);
      return timedRounds(rounds, pairs, () => run(kind, pairs), db, applicationName);
    },
    close: () => db.end(),
  };
}
