import { MIGRATION_14_SQL } from './metering-functions-14.js';
import { MIGRATION_15_SQL } from './hold-rows-15.js';
import { releasedFunction, replacedOnce } from './released-functions.js';

/**
 * Migration 16: a hold carries what it set aside per budget on its own row.
 *
 * Until now each hold had a row per budget in hold_budgets (two indexes each), and triggers on that
 * table kept the budgets' reservations. A request with four budgets thus wrote four rows and eight
 * index entries more than its hold, deleted the rows again (dead rows for vacuum to clear), and
 * ran a trigger each time. Here the hold's row has the budgets' keys and the tokens and micros it
 * set aside on each (a budget created while a stream ran joins with less), and the metering
 * functions change the reservations themselves. A reserve+settle pair writes about a quarter less
 * write-ahead log; its CPU stays about the same (BENCHMARKS.md, issue 17, migration 16).
 *
 * - lq_meter_many writes each hold with its shares (in full when it writes the hold before the
 *   locks, then again for one granted less), adds an extension to them, and adds what its holds
 *   set aside to the budgets' reservations in key order;
 * - lq_holds_deleted deletes holds (locked first, in id order) and gives their shares back (in key
 *   order). lq_settle_many, lq_release_hold and the expiry sweep all delete holds through it.
 *
 * So the lock order stays as it was: scopes, then holds, then reservations in key order. The live
 * holds' rows in hold_budgets move onto the holds; the table stays, empty and without triggers, for
 * the functions of earlier migrations. The answers do not change. An instance of an earlier version
 * refuses a newer schema, so the functions are replaced in place.
 *
 * Released with migration 16: never edited, a change is a new migration.
 */

/** The distinct reservation keys of the item whose budgets are places `from` .. `to` (lq_meter_many's columns). */
const itemKeys = (from: string, to: string) => `ARRAY(SELECT DISTINCT r_keys[rpos[j]] FROM generate_series(${from}, ${to}) AS j ORDER BY 1)`;

/**
 * Migration 14's lq_meter_many, each hold written with its shares: in full with the hold (those
 * granted less are written again with the grant, as they were), added to by an extension, and the
 * budgets' reservations changed here rather than by triggers.
 */
function meterMany(): string {
  const replacements: [what: string, from: string, to: string][] = [
    [
      'the holds written before the locks',
      `      INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
      SELECT hid[o.n], h.v->>'instance', h.v->>'user', h.v->>'project', h.v->>'key', full_t[o.n], full_m[o.n], full_o[o.n],
        (h.v->>'createdAt')::bigint, (h.v->>'expiresAt')::bigint, h.v->>'pending', (h.v->>'createdAt')::bigint
      FROM generate_subscripts(full_t, 1) AS o(n) CROSS JOIN LATERAL (SELECT items->(o.n - 1)->'hold' AS v) h
`,
      `      INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at,
        budget_keys, budget_tokens, budget_micros)
      SELECT hid[o.n], h.v->>'instance', h.v->>'user', h.v->>'project', h.v->>'key', full_t[o.n], full_m[o.n], full_o[o.n],
        (h.v->>'createdAt')::bigint, (h.v->>'expiresAt')::bigint, h.v->>'pending', (h.v->>'createdAt')::bigint,
        b.keys, array_fill(full_t[o.n], ARRAY[cardinality(b.keys)]), array_fill(full_m[o.n], ARRAY[cardinality(b.keys)])
      FROM generate_subscripts(full_t, 1) AS o(n) CROSS JOIN LATERAL (SELECT items->(o.n - 1)->'hold' AS v) h
        CROSS JOIN LATERAL (SELECT ${itemKeys('first[o.n]', 'first[o.n + 1] - 1')} AS keys) b
`,
    ],
    [
      'an extension',
      `            updated_at = (item->>'now')::bigint
          WHERE id = hid[n] RETURNING * INTO grown;`,
      `            updated_at = (item->>'now')::bigint,
            -- A budget created while the stream ran joins with this extension.
            (budget_keys, budget_tokens, budget_micros) = (
              SELECT COALESCE(array_agg(s.k ORDER BY s.k), '{}'), COALESCE(array_agg(s.t ORDER BY s.k), '{}'), COALESCE(array_agg(s.m ORDER BY s.k), '{}')
              FROM (SELECT a.k, SUM(a.t)::bigint AS t, SUM(a.m)::bigint AS m
                    FROM (SELECT * FROM unnest(budget_keys, budget_tokens, budget_micros)
                          UNION ALL SELECT k.key, add_t, add_m FROM unnest(${itemKeys('j0', 'first[n + 1] - 1')}) AS k(key)) a(k, t, m)
                    GROUP BY a.k) s)
          WHERE id = hid[n] RETURNING * INTO grown;`,
    ],
    [
      'a hold under rate limits',
      `            INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
            VALUES (hid[n], h->>'instance', h->>'user', h->>'project', h->>'key', tok, mic, outp,
              (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint, h->>'pending', (h->>'createdAt')::bigint)
            ON CONFLICT (id) DO NOTHING;`,
      `            INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at,
              budget_keys, budget_tokens, budget_micros)
            SELECT hid[n], h->>'instance', h->>'user', h->>'project', h->>'key', tok, mic, outp,
              (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint, h->>'pending', (h->>'createdAt')::bigint,
              b.keys, array_fill(tok, ARRAY[cardinality(b.keys)]), array_fill(mic, ARRAY[cardinality(b.keys)])
            FROM (SELECT ${itemKeys('j0', 'first[n + 1] - 1')} AS keys) b
            ON CONFLICT (id) DO NOTHING;`,
    ],
    [
      'the holds granted less',
      `      UPDATE holds SET tokens = g_t[x.n], micros = g_m[x.n], output_tokens = g_o[x.n] FROM unnest(regranted) AS x(n) WHERE id = hid[x.n];`,
      `      UPDATE holds SET tokens = g_t[x.n], micros = g_m[x.n], output_tokens = g_o[x.n],
        budget_tokens = array_fill(g_t[x.n], ARRAY[cardinality(budget_keys)]), budget_micros = array_fill(g_m[x.n], ARRAY[cardinality(budget_keys)])
      FROM unnest(regranted) AS x(n) WHERE id = hid[x.n];`,
    ],
  ];
  const released14 = releasedFunction(MIGRATION_14_SQL, 'CREATE FUNCTION lq_meter_many(', 16).replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION');
  const meter = replacements.reduce((sql, [what, from, to]) => replacedOnce(sql, from, to, `migration 14’s lq_meter_many (${what})`, 16), released14);
  // The holds' budget rows, from the comment before them to their END IF: the reservations instead.
  const rows = meter.indexOf("    -- A budget created while a stream ran joins its hold; an extension adds to the rows it has.");
  const rowsEnd = meter.indexOf('\n    END IF;', rows) + '\n    END IF;'.length;
  const removed = meter.slice(rows, rowsEnd);
  if (rows < 0 || !removed.startsWith('    -- A budget') || !removed.includes('IF extended THEN') || !removed.includes('INSERT INTO hold_budgets')) {
    throw new Error('migration 16: migration 14’s lq_meter_many (the holds’ budget rows) is not as released');
  }
  const reservations = `    -- What the holds now set aside, added to the budgets' reservations in key order (a budget's
    -- row is made the first time).
    IF cardinality(hb_keys) > 0 THEN
      INSERT INTO budget_reservations (budget_key, tokens, micros)
      SELECT x.k, SUM(x.t), SUM(x.m) FROM unnest(hb_keys, hb_t, hb_m) AS x(k, t, m) GROUP BY x.k ORDER BY x.k
      ON CONFLICT (budget_key) DO UPDATE SET tokens = budget_reservations.tokens + excluded.tokens, micros = budget_reservations.micros + excluded.micros;
    END IF;`;
  return meter.slice(0, rows) + reservations + meter.slice(rowsEnd);
}

/** Migration 15's lq_settle_many, its settled holds deleted through lq_holds_deleted. */
function settleMany(): string {
  const delete15 = `    WITH locked AS MATERIALIZED (SELECT h.id FROM holds h WHERE h.id = ANY(settled) ORDER BY h.id FOR UPDATE),
    budget_rows AS (DELETE FROM hold_budgets WHERE hold_id = ANY(settled))
    -- (Migration 15: found by id, whatever the number of holds.)
    DELETE FROM holds WHERE id = ANY(settled) AND id IN (SELECT l.id FROM locked l);`;
  const delete16 = `    -- (Migration 16: their shares given back from their own rows.)
    PERFORM lq_holds_deleted(settled);`;
  return replacedOnce(releasedFunction(MIGRATION_15_SQL, 'CREATE OR REPLACE FUNCTION lq_settle_many(', 16), delete15, delete16, 'migration 15’s lq_settle_many', 16);
}

export const MIGRATION_16_SQL = `
  ALTER TABLE holds
    ADD COLUMN budget_keys   TEXT[] COLLATE "C" NOT NULL DEFAULT '{}',
    ADD COLUMN budget_tokens BIGINT[] NOT NULL DEFAULT '{}',
    ADD COLUMN budget_micros BIGINT[] NOT NULL DEFAULT '{}';
  -- The live holds' shares move onto their rows; the reservations they sum to stay as they are.
  LOCK TABLE hold_budgets IN SHARE ROW EXCLUSIVE MODE;
  UPDATE holds h SET budget_keys = b.keys, budget_tokens = b.tokens, budget_micros = b.micros
  FROM (SELECT hb.hold_id, array_agg(hb.budget_key ORDER BY hb.budget_key) AS keys, array_agg(hb.tokens ORDER BY hb.budget_key) AS tokens,
          array_agg(hb.micros ORDER BY hb.budget_key) AS micros
        FROM hold_budgets hb GROUP BY hb.hold_id) b
  WHERE h.id = b.hold_id;
  DROP TRIGGER hold_budgets_added ON hold_budgets;
  DROP TRIGGER hold_budgets_removed ON hold_budgets;
  DROP TRIGGER hold_budgets_changed ON hold_budgets;
  DELETE FROM hold_budgets;

  -- Deletes these holds, each locked first in id order (as every path that deletes or grows holds
  -- locks them), and gives their shares back to the budgets' reservations, locked in key order.
  -- Answers how many there were.
  CREATE FUNCTION lq_holds_deleted(p_ids text[]) RETURNS int LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
  DECLARE
    deleted int;
    given_keys text[]; given_tokens bigint[]; given_micros bigint[];
  BEGIN
    WITH locked AS MATERIALIZED (SELECT h.id FROM holds h WHERE h.id = ANY(p_ids) ORDER BY h.id FOR UPDATE),
      gone AS (DELETE FROM holds WHERE id = ANY(p_ids) AND id IN (SELECT l.id FROM locked l) RETURNING budget_keys, budget_tokens, budget_micros)
    SELECT (SELECT count(*) FROM gone), COALESCE(array_agg(b.k), '{}'), COALESCE(array_agg(b.t), '{}'), COALESCE(array_agg(b.m), '{}')
    INTO deleted, given_keys, given_tokens, given_micros
    FROM gone g CROSS JOIN LATERAL unnest(g.budget_keys, g.budget_tokens, g.budget_micros) AS b(k, t, m);
    IF cardinality(given_keys) > 0 THEN
      PERFORM 1 FROM budget_reservations r WHERE r.budget_key = ANY(given_keys) ORDER BY r.budget_key FOR UPDATE;
      UPDATE budget_reservations r SET tokens = r.tokens - x.t, micros = r.micros - x.m
      FROM (SELECT b.k, SUM(b.t) AS t, SUM(b.m) AS m FROM unnest(given_keys, given_tokens, given_micros) AS b(k, t, m) GROUP BY b.k) x
      WHERE r.budget_key = ANY(given_keys) AND r.budget_key = x.k;
    END IF;
    RETURN deleted;
  END $fn$;

  ${meterMany()}

  ${settleMany()}

  -- A release: the hold deleted and its shares given back. True when there was a hold to release.
  CREATE OR REPLACE FUNCTION lq_release_hold(p_id text) RETURNS boolean LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
  BEGIN
    RETURN lq_holds_deleted(ARRAY[p_id]) > 0;
  END $fn$;
`;
