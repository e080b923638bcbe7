import { MIGRATION_14_SQL } from './metering-functions-14.js';
import { releasedFunction, replacedOnce } from './released-functions.js';

/**
 * Migration 15: a request's hold is settled, released, renewed and grown through its own rows,
 * however many holds are in flight and whatever the tables' statistics say.
 *
 * Five statements could read far more than a request's rows. PostgreSQL is free to plan a join with
 * a handful of keys as a scan of a whole index, filtered, and a statement outside the metering
 * functions (which turn sequential scans off) as a scan of a whole table. It did both, with
 * statistics taken while the tables were nearly empty, as a queue table's often are (autovacuum at
 * a quiet moment, an ANALYZE after a load). Each call then read every live and not yet vacuumed
 * hold, or every budget's reservation row: work that grows with the requests in flight, for every
 * request (hold-plans.test.ts watches the plans).
 *
 * - lq_settle_many deleted its settled holds by a join of the holds with those it had locked: here
 *   by their ids (= ANY), the rest of migration 14's function as it was;
 * - the triggers on hold_budgets locked and updated the budgets' reservation rows by a join with
 *   the rows the statement changed: here by those rows' keys, with sequential scans off as in the
 *   metering functions, whoever's statement fires them;
 * - a release deleted its hold and the hold's budget rows, and a renewal moved its hold's expiry,
 *   in statements of their own, which could scan the tables: here lq_release_hold and
 *   lq_renew_hold, the same statements with sequential scans off.
 *
 * The answers do not change. An instance of an earlier version refuses a newer schema (upgrading
 * means stopping every instance first: README, Several instances), so the functions are replaced in
 * place. Released with migration 15: never edited, a change is a new migration.
 */

/** Migration 14's lq_settle_many again, its settled holds deleted by id. */
function settleManyByHoldId(): string {
  const released = releasedFunction(MIGRATION_14_SQL, 'CREATE FUNCTION lq_settle_many(', 15).replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION');
  const joined = 'DELETE FROM holds WHERE id IN (SELECT l.id FROM locked l);';
  const byId = `-- (Migration 15: found by id, whatever the number of holds.)\n    DELETE FROM holds WHERE id = ANY(settled) AND id IN (SELECT l.id FROM locked l);`;
  return replacedOnce(released, joined, byId, 'migration 14’s lq_settle_many', 15);
}

export const MIGRATION_15_SQL = `
  ${settleManyByHoldId()}

  -- The budgets' rows are locked in key order first, as in migration 11, so that two statements
  -- changing the same budgets' rows never wait on each other in a cycle.
  CREATE OR REPLACE FUNCTION lq_reservations_removed() RETURNS trigger LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
  DECLARE
    keys text[] := ARRAY(SELECT DISTINCT g.budget_key FROM gone g);
  BEGIN
    PERFORM 1 FROM budget_reservations r WHERE r.budget_key = ANY(keys) ORDER BY r.budget_key FOR UPDATE;
    UPDATE budget_reservations r SET tokens = r.tokens - x.t, micros = r.micros - x.m
    FROM (SELECT g.budget_key, SUM(g.tokens) AS t, SUM(g.micros) AS m FROM gone g GROUP BY g.budget_key) x
    WHERE r.budget_key = ANY(keys) AND r.budget_key = x.budget_key;
    RETURN NULL;
  END $fn$;

  CREATE OR REPLACE FUNCTION lq_reservations_changed() RETURNS trigger LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
  DECLARE
    keys text[] := ARRAY(SELECT DISTINCT n.budget_key FROM after_change n);
  BEGIN
    PERFORM 1 FROM budget_reservations r WHERE r.budget_key = ANY(keys) ORDER BY r.budget_key FOR UPDATE;
    UPDATE budget_reservations r SET tokens = r.tokens + x.t, micros = r.micros + x.m
    FROM (SELECT d.budget_key, SUM(d.t) AS t, SUM(d.m) AS m
          FROM (SELECT n.budget_key, n.tokens AS t, n.micros AS m FROM after_change n
                UNION ALL SELECT o.budget_key, -o.tokens, -o.micros FROM before_change o) d
          GROUP BY d.budget_key) x
    WHERE r.budget_key = ANY(keys) AND r.budget_key = x.budget_key;
    RETURN NULL;
  END $fn$;

  -- A release: the hold's row, then its budget rows (whose trigger gives their reservations back),
  -- as every path that deletes holds does, in one statement. True when there was a hold to release.
  CREATE FUNCTION lq_release_hold(p_id text) RETURNS boolean LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
  DECLARE
    released int;
  BEGIN
    WITH h AS (DELETE FROM holds WHERE id = p_id RETURNING id),
      b AS (DELETE FROM hold_budgets WHERE hold_id = p_id AND hold_id IN (SELECT id FROM h))
    SELECT count(*) INTO released FROM h;
    RETURN released > 0;
  END $fn$;

  -- A renewal: the hold's expiry moved on (never back). True when there was a hold to renew.
  CREATE FUNCTION lq_renew_hold(p_id text, p_expires_at bigint) RETURNS boolean LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
  BEGIN
    UPDATE holds SET expires_at = GREATEST(expires_at, p_expires_at) WHERE id = p_id;
    RETURN FOUND;
  END $fn$;
`;
