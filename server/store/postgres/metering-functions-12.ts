/**
 * Migration 12: the batch functions without per-item statements. lq_meter_batch and
 * lq_settle_batch (migration 11) decide their items one by one in PL/pgSQL, each item a dozen
 * statements and jsonb look-ups, all under the scope locks; under a global budget every batch of
 * every instance waits for the one before it, so that per-item work bounded the pairs per second
 * (BENCHMARKS.md, issue 17). lq_meter_many and lq_settle_many follow the same rules, but:
 *
 * - their argument lists each budget window once for the batch (metering-args.ts sharedWindows());
 * - what does not depend on the budgets' usage is done before the scope locks are taken: reading
 *   the items' fields, windows and limits, a statement each for the batch (lq_window_list), and
 *   writing the ledger entries of the settles and the holds of the reservations (as if fully
 *   granted: the decisions change them);
 * - under the locks, each step is one statement for the batch (the scopes' versions with their
 *   locks, the windows' usage, the reservations, the counters, the totals, the holds gone), and the
 *   loop over the items is arithmetic on arrays;
 * - the budgets' fingerprint is the scopes' versions (scope_locks.version, bumped by triggers on
 *   budgets and grants), read with the locks, instead of a digest of the rows.
 *
 * Their answers are columns (arrays) rather than an object per item: batch-answers.ts turns them
 * back into the per-item answers the store reads. A request's second settle in one batch finds the
 * first's entry and is a duplicate, as before; only when the first is left out (its budgets
 * changed, or it fires an alert) does the batch fail, for the store to settle its items one by one.
 *
 * Every statement of these functions is planned once per connection (plan_cache_mode
 * force_generic_plan), and each look-up in a table is a LATERAL subquery, so a generic plan still
 * probes an index per row instead of scanning one whole.
 *
 * The functions of migration 11 stay, for an instance of that version until all are upgraded.
 *
 * Released with migration 12: never edited, a change is a new migration.
 */
export const MIGRATION_12_SQL = `
  -- A hold's budget rows go with the hold on every path that deletes holds (the batches, expiry,
  -- release: each deletes them itself, the hold's row locked first), so the foreign key that
  -- checked each new row against its hold, and deleted them again row by row when the hold went,
  -- is dropped: it cost a batch of 64 reservations 256 look-ups under the scope locks.
  ALTER TABLE hold_budgets DROP CONSTRAINT hold_budgets_hold_id_fkey;

  -- Each scope's version, bumped by every change to its budgets or grants (by the triggers below,
  -- whichever statement makes it). The budgets' fingerprint that a metering call is checked against
  -- is the versions of its scopes: read with their locks, one index probe each, instead of a
  -- digest of their budgets and grants.
  ALTER TABLE scope_locks ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
  CREATE FUNCTION lq_scopes_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO scope_locks (scope, version) SELECT DISTINCT c.scope, 1 FROM added c ORDER BY 1
      ON CONFLICT (scope) DO UPDATE SET version = scope_locks.version + 1;
    ELSIF TG_OP = 'DELETE' THEN
      INSERT INTO scope_locks (scope, version) SELECT DISTINCT c.scope, 1 FROM gone c ORDER BY 1
      ON CONFLICT (scope) DO UPDATE SET version = scope_locks.version + 1;
    ELSE
      INSERT INTO scope_locks (scope, version) SELECT c.scope, 1 FROM (SELECT scope FROM before_change UNION SELECT scope FROM after_change) c ORDER BY 1
      ON CONFLICT (scope) DO UPDATE SET version = scope_locks.version + 1;
    END IF;
    RETURN NULL;
  END $fn$;
  CREATE TRIGGER budgets_added AFTER INSERT ON budgets REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION lq_scopes_changed();
  CREATE TRIGGER budgets_removed AFTER DELETE ON budgets REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION lq_scopes_changed();
  CREATE TRIGGER budgets_changed AFTER UPDATE ON budgets REFERENCING OLD TABLE AS before_change NEW TABLE AS after_change
    FOR EACH STATEMENT EXECUTE FUNCTION lq_scopes_changed();
  CREATE TRIGGER grants_added AFTER INSERT ON grants REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION lq_scopes_changed();
  CREATE TRIGGER grants_removed AFTER DELETE ON grants REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION lq_scopes_changed();
  CREATE TRIGGER grants_changed AFTER UPDATE ON grants REFERENCING OLD TABLE AS before_change NEW TABLE AS after_change
    FOR EACH STATEMENT EXECUTE FUNCTION lq_scopes_changed();

  -- The budgets' fingerprint (migration 11's, which PostgresStore reads with the budgets and
  -- lq_usage_totals compares): the versions of the scopes, in the order given.
  CREATE OR REPLACE FUNCTION lq_fingerprint(p_scopes text[]) RETURNS text LANGUAGE plpgsql STABLE AS $fn$
  BEGIN
    RETURN (SELECT COALESCE(string_agg(COALESCE(l.version, 0)::text, ',' ORDER BY s.n), '')
            FROM unnest(p_scopes) WITH ORDINALITY AS s(scope, n)
            LEFT JOIN LATERAL (SELECT v.version FROM scope_locks v WHERE v.scope = s.scope OFFSET 0) l ON true);
  END $fn$;

  -- Places from counts: for counts [c1, c2, …], the place where each run starts in their
  -- concatenation, and one past the end: [1, 1 + c1, 1 + c1 + c2, …]. A batch's items list their
  -- budgets (and its windows their thresholds) one after another; item n's are at
  -- places[n] .. places[n + 1] - 1.
  CREATE FUNCTION lq_places(p_counts int[]) RETURNS int[] LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    places int[] := '{1}';
  BEGIN
    FOR i IN 1 .. cardinality(p_counts) LOOP
      places := places || (places[i] + p_counts[i]);
    END LOOP;
    RETURN places;
  END $fn$;

  -- The functions below up to lq_settle_many are called by lq_settle_many and lq_meter_many only,
  -- and run under their settings (no JIT, index scans, plans kept generic: see lq_settle_many).

  -- Locks the rows of these scopes (distinct, in text order) until the transaction ends, as
  -- lq_lock_scopes does, and answers their versions. The rows of scopes seen before are there:
  -- locked in one statement; only a scope seen for the first time makes its row first.
  CREATE FUNCTION lq_lock_versions(p_scopes text[], OUT scopes text[], OUT versions bigint[]) LANGUAGE plpgsql AS $fn$
  BEGIN
    SELECT COALESCE(array_agg(l.scope), '{}'), COALESCE(array_agg(l.version), '{}') INTO scopes, versions
    FROM (SELECT s.scope, s.version FROM scope_locks s WHERE s.scope = ANY(p_scopes) ORDER BY s.scope FOR UPDATE) l;
    IF cardinality(scopes) < cardinality(p_scopes) THEN
      INSERT INTO scope_locks (scope) SELECT s FROM unnest(p_scopes) AS s ORDER BY s ON CONFLICT DO NOTHING;
      SELECT COALESCE(array_agg(l.scope), '{}'), COALESCE(array_agg(l.version), '{}') INTO scopes, versions
      FROM (SELECT s.scope, s.version FROM scope_locks s WHERE s.scope = ANY(p_scopes) ORDER BY s.scope FOR UPDATE) l;
    END IF;
  END $fn$;

  -- Whether each item of a batch (p_items: [{scopes, fingerprint}]) was resolved under the versions
  -- its scopes have now (p_scopes, p_versions: lq_lock_versions' answer): its fingerprint is
  -- lq_fingerprint's of its scopes.
  CREATE FUNCTION lq_fresh(p_items jsonb, p_scopes text[], p_versions bigint[]) RETURNS boolean[] LANGUAGE plpgsql AS $fn$
  BEGIN
    RETURN (SELECT COALESCE(array_agg(COALESCE(g.print, '') IS NOT DISTINCT FROM it.v->>'fingerprint' ORDER BY it.n), '{}')
            FROM jsonb_array_elements(p_items) WITH ORDINALITY AS it(v, n)
            LEFT JOIN (SELECT e.n, string_agg(COALESCE(v.version, 0)::text, ',' ORDER BY e.k) AS print
                       FROM (SELECT x.n, s.scope, s.k FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(v, n)
                             CROSS JOIN LATERAL jsonb_array_elements_text(x.v->'scopes') WITH ORDINALITY AS s(scope, k)) e
                       LEFT JOIN unnest(p_scopes, p_versions) AS v(scope, version) ON v.scope = e.scope
                       GROUP BY e.n) g ON g.n = it.n);
  END $fn$;

  -- The budget windows of a batch (p_windows: each once, as metering-args.ts sharedWindows() lists
  -- them; p_items: [{budgets: [place in p_windows, from 0]}]) in key order (by budget key and first
  -- bucket), with its argument, newest bucket, number of buckets and span, and whether another
  -- window of the batch is of the same budget (clocks straddling a bucket's edge); and "places",
  -- the place in that order of each item's budgets, item after item. None of it reads a table: a
  -- batch makes this list before it takes its locks.
  CREATE FUNCTION lq_window_list(p_windows jsonb, p_items jsonb, OUT keys text[], OUT budget_keys text[], OUT args jsonb[], OUT newest bigint[],
    OUT counts bigint[], OUT span bigint[], OUT shared boolean[], OUT places int[])
    LANGUAGE plpgsql AS $fn$
  BEGIN
    WITH d AS MATERIALIZED (
      SELECT y.*, row_number() OVER (ORDER BY y.k) AS i, count(*) OVER (PARTITION BY y.key) AS siblings
      FROM (SELECT x.o, (x.b->>'key') || '@' || (x.b->>'start') AS k, x.b, x.b->>'key' AS key, (x.b->>'count')::bigint AS n,
              (x.b->>'step')::bigint AS step, (x.b->>'start')::bigint + ((x.b->>'count')::bigint - 1) * (x.b->>'step')::bigint AS newest
            FROM jsonb_array_elements(p_windows) WITH ORDINALITY AS x(b, o)) y)
    SELECT COALESCE(array_agg(v.k), '{}'), COALESCE(array_agg(v.key), '{}'), COALESCE(array_agg(v.b), '{}'), COALESCE(array_agg(v.newest), '{}'),
      COALESCE(array_agg(v.n), '{}'), COALESCE(array_agg(v.n * v.step), '{}'), COALESCE(array_agg(v.siblings > 1), '{}'),
      (SELECT COALESCE(array_agg(d.i::int ORDER BY it.n, e.k), '{}')
       FROM jsonb_array_elements(p_items) WITH ORDINALITY AS it(v, n)
       CROSS JOIN LATERAL jsonb_array_elements_text(it.v->'budgets') WITH ORDINALITY AS e(o, k)
       JOIN d ON d.o = e.o::bigint + 1)
    INTO keys, budget_keys, args, newest, counts, span, shared, places
    FROM (SELECT * FROM d ORDER BY d.i) v;
  END $fn$;

  -- The settled usage of lq_window_list's windows (in its order): each window's sums and its newest
  -- bucket's own (lq_window_sums' answer), with the probes of the usual case made for all in one
  -- statement: a window of one bucket whose counter exists, or a rolling one whose running total is
  -- of this window, is read there and then. Only the others (a window that moved on, a bucket never
  -- counted) call lq_window_sums, one by one in key order, which writes the totals when p_write.
  -- A bucket never counted is counted from the ledger: a caller whose transaction wrote entries
  -- the ledger must not count yet says so (p_ledger_ok false) and is answered from_ledger true,
  -- and nothing else, when one is.
  CREATE FUNCTION lq_window_usage(p_args jsonb[], p_budget_keys text[], p_newest bigint[], p_counts bigint[], p_write boolean, p_ledger_ok boolean,
    OUT tokens bigint[], OUT micros bigint[], OUT oldest bigint[], OUT cur_tokens bigint[], OUT cur_micros bigint[], OUT from_ledger boolean)
    LANGUAGE plpgsql AS $fn$
  DECLARE
    read boolean[];
    moved boolean[];
    s record;
  BEGIN
    SELECT COALESCE(array_agg(CASE WHEN w.n = 1 THEN u.tokens ELSE t.tokens END ORDER BY w.i), '{}'),
      COALESCE(array_agg(CASE WHEN w.n = 1 THEN u.micros ELSE t.micros END ORDER BY w.i), '{}'),
      COALESCE(array_agg(CASE WHEN w.n > 1 THEN t.oldest_used END ORDER BY w.i), '{}'),
      COALESCE(array_agg(COALESCE(u.tokens, 0) ORDER BY w.i), '{}'), COALESCE(array_agg(COALESCE(u.micros, 0) ORDER BY w.i), '{}'),
      COALESCE(array_agg(COALESCE((w.n = 1 AND u.tokens IS NOT NULL) OR (w.n > 1 AND t.bucket_start = w.newest), false) ORDER BY w.i), '{}'),
      -- lq_window_sums' test for a window whose running total it can move on from its counters.
      COALESCE(array_agg(COALESCE(w.n > 1 AND t.bucket_start IS NOT NULL AND (w.args->>'start')::bigint >= t.bucket_start - (w.n - 1) * (w.args->>'step')::bigint, false) ORDER BY w.i), '{}')
    INTO tokens, micros, oldest, cur_tokens, cur_micros, read, moved
    FROM unnest(p_args, p_budget_keys, p_newest, p_counts) WITH ORDINALITY AS w(args, key, newest, n, i)
    -- One index probe per window, whatever the number of windows (a generic plan would otherwise
    -- join by scanning the tables' indexes whole).
    -- (A rolling window's newest bucket is read from its counter only when it is settled into and
    -- has none yet: lq_count_settle, with 0.)
    LEFT JOIN LATERAL (SELECT c.tokens, c.micros FROM usage_counters c WHERE w.n = 1 AND c.budget_key = w.key AND c.bucket_start = w.newest OFFSET 0) u ON true
    LEFT JOIN LATERAL (SELECT r.* FROM window_totals r WHERE w.n > 1 AND r.budget_key = w.key OFFSET 0) t ON true;
    from_ledger := false;
    IF NOT p_ledger_ok THEN
      FOR i IN 1 .. cardinality(read) LOOP
        from_ledger := from_ledger OR NOT (read[i] OR moved[i]);
      END LOOP;
      IF from_ledger THEN
        RETURN;
      END IF;
    END IF;
    FOR i IN 1 .. cardinality(read) LOOP
      CONTINUE WHEN read[i];
      s := lq_window_sums(p_args[i], p_write);
      tokens[i] := s.tokens; micros[i] := s.micros; oldest[i] := s.oldest; cur_tokens[i] := s.cur_tokens; cur_micros[i] := s.cur_micros;
    END LOOP;
  END $fn$;

  -- The ledger entries of a batch of settles (lq_settle_many's p.settles), in order, each unless its
  -- request has one already (committed, or earlier in the batch): answers {request id: ledger id}
  -- of those it wrote.
  CREATE FUNCTION lq_write_entries(p_settles jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    written jsonb;
  BEGIN
    WITH added AS (
      INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
        reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, overrun_tokens, cache_write_tokens,
        cache_write_1h_tokens, upstream, saved_tokens, saved_micros)
      SELECT e.request_id, e.at, e.user_id, e.project_id, e.key_id, e.model, e.input_tokens, e.output_tokens, e.cached_tokens,
        e.reasoning_tokens, e.cost_micros, e.source, e.outcome, e.latency_ms, e.session_id, e.tags, COALESCE(e.overrun_tokens, 0),
        COALESCE(e.cache_write_tokens, 0), COALESCE(e.cache_write_1h_tokens, 0), e.upstream, COALESCE(e.saved_tokens, 0), COALESCE(e.saved_micros, 0)
      FROM jsonb_array_elements(p_settles) WITH ORDINALITY AS s(v, n) CROSS JOIN LATERAL jsonb_populate_record(NULL::ledger, s.v->'entry') AS e
      ORDER BY s.n
      ON CONFLICT (request_id) DO NOTHING
      RETURNING request_id, id)
    SELECT COALESCE(jsonb_object_agg(a.request_id, a.id), '{}') INTO written FROM added a;
    RETURN written;
  END $fn$;

  -- The settles of one group commit (lq_settle_batch's rules, and its argument with the budgets'
  -- windows listed once: metering-args.ts sharedWindows()), with what does not
  -- depend on the budgets' usage done before the scope locks are taken, and the rest a statement
  -- for the whole batch wherever it does not depend on the settles before it:
  --
  -- - before the locks: each settle's fields, its windows' places (lq_window_list), and its ledger
  --   entry written (unique per request: one already there, committed or earlier in this batch,
  --   makes the settle a duplicate; one being written by another transaction is waited for);
  -- - under the locks: the fingerprints (the scopes' versions), each window's usage, and in the loop
  --   only arithmetic on arrays: whether an alert may be due, and the usage carried to the settles
  --   after it; then the counters and running totals a statement each, and the holds gone.
  --
  -- A settle found stale, or one that may fire an alert, has its entry taken out again. Whether an
  -- alert may be due is lq_alerts_due_each's arithmetic, with each window's next threshold found
  -- once: a settle that reaches it is left out (and adds nothing), so the usage carried through the
  -- batch stays below it.
  --
  -- Answers {"status": per settle "ok" | "stale" | "duplicate" | "alerts", "ids": [request id,
  -- ledger id] of each entry written, "used": [tokens[], micros[], oldest[]], each budget of each
  -- "ok" settle in turn (its usage before it), "entries": the stored entries of the duplicates}.
  CREATE FUNCTION lq_settle_many(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $fn$
  DECLARE
    in_tx boolean := (p->>'inTransaction')::boolean;
    settles jsonb := p->'settles';
    cnt int := jsonb_array_length(settles);
    lk record;
    fresh boolean[];
    w record;
    u record;
    -- The windows (by place in w): sums carried through the batch, what the batch adds, the next
    -- threshold level (x 100) of each unit, the limits, what a projection needs (whether one is
    -- made, the window's start and end), and the thresholds, ascending (th[th_first[i] .. th_first[i + 1] - 1]).
    wt bigint[]; wm bigint[]; wo bigint[];
    add_t bigint[]; add_m bigint[];
    lvl_t numeric[]; lvl_m numeric[];
    lim_t bigint[]; lim_m bigint[]; proj boolean[]; w_start bigint[]; w_end bigint[]; th numeric[]; th_first int[];
    -- The settles (by number): request id, tokens and micros added, time, whether an overrun
    -- comes with it, and the places of their windows: w.places[first[n] .. first[n + 1] - 1].
    rid text[]; at_t bigint[]; at_m bigint[]; at_now bigint[]; has_overrun boolean[];
    first int[];
    -- Each entry this call wrote: [request id, ledger id].
    written jsonb;
    mine boolean[];
    status text[];
    ut bigint[] := '{}'; um bigint[] := '{}'; uo bigint[] := '{}';
    settled text[] := '{}';
    taken_out text[] := '{}';
    grown boolean[];
    dt bigint; dm bigint; now_ bigint; q int; sibling int; due boolean; lim bigint; used bigint; level numeric; after bigint; elapsed float8;
  BEGIN
    SELECT COALESCE(array_agg(s.v->'entry'->>'request_id' ORDER BY s.n), '{}'),
      COALESCE(array_agg((s.v->'entry'->>'input_tokens')::bigint + (s.v->'entry'->>'output_tokens')::bigint ORDER BY s.n), '{}'),
      COALESCE(array_agg((s.v->'entry'->>'cost_micros')::bigint ORDER BY s.n), '{}'),
      COALESCE(array_agg((s.v->'entry'->>'at')::bigint ORDER BY s.n), '{}'),
      COALESCE(array_agg(jsonb_typeof(s.v->'overrun') = 'object' ORDER BY s.n), '{}'),
      COALESCE(array_agg(jsonb_array_length(s.v->'budgets') ORDER BY s.n), '{}')
    INTO rid, at_t, at_m, at_now, has_overrun, first
    FROM jsonb_array_elements(settles) WITH ORDINALITY AS s(v, n);
    first := lq_places(first);
    w := lq_window_list(p->'windows', settles);
    IF cardinality(w.places) <> first[cnt + 1] - 1 THEN
      RAISE EXCEPTION 'lq_settle_many: a budget without its window';
    END IF;
    SELECT COALESCE(array_agg((x.b->>'limitTokens')::bigint ORDER BY x.i), '{}'), COALESCE(array_agg((x.b->>'limitMicros')::bigint ORDER BY x.i), '{}'),
      COALESCE(array_agg(COALESCE((x.b->>'projectable')::boolean, false) AND x.b->>'end' IS NOT NULL ORDER BY x.i), '{}'),
      COALESCE(array_agg((x.b->>'start')::bigint ORDER BY x.i), '{}'), COALESCE(array_agg((x.b->>'end')::bigint ORDER BY x.i), '{}'),
      COALESCE(array_agg(jsonb_array_length(x.b->'thresholds') ORDER BY x.i), '{}')
    INTO lim_t, lim_m, proj, w_start, w_end, th_first
    FROM unnest(w.args) WITH ORDINALITY AS x(b, i);
    SELECT COALESCE(array_agg(t.v::numeric ORDER BY x.i, t.v::numeric), '{}') INTO th
    FROM unnest(w.args) WITH ORDINALITY AS x(b, i) CROSS JOIN LATERAL jsonb_array_elements_text(x.b->'thresholds') AS t(v);
    th_first := lq_places(th_first);

    written := lq_write_entries(settles);
    -- A settle wrote its entry when the entry is this call's and no settle before it had its request id.
    SELECT COALESCE(array_agg(written ? r.id AND NOT r.id = ANY(rid[1 : r.n - 1]) ORDER BY r.n), '{}') INTO mine
    FROM unnest(rid) WITH ORDINALITY AS r(id, n);

    lk := lq_lock_versions(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    fresh := lq_fresh(settles, lk.scopes, lk.versions);
    u := lq_window_usage(w.args, w.budget_keys, w.newest, w.counts, true, written = '{}');
    IF u.from_ledger THEN
      -- A bucket to count from the ledger (the first settle of a new day, say), which must not count
      -- the entries written above, twice: they are taken out while it is counted, and written again.
      DELETE FROM ledger WHERE request_id = ANY(ARRAY(SELECT jsonb_object_keys(written)));
      u := lq_window_usage(w.args, w.budget_keys, w.newest, w.counts, true, true);
      written := lq_write_entries(settles);
    END IF;
    wt := u.tokens; wm := u.micros; wo := u.oldest;
    add_t := array_fill(0::bigint, ARRAY[cardinality(w.keys)]);
    add_m := add_t;
    -- The next threshold of each window's usage, in each unit (x 100: a settle reaching it may fire
    -- an alert); lq_alerts_due_each's rule for a limit of 0 or less: any usage while there is none.
    lvl_t := array_fill(NULL::numeric, ARRAY[cardinality(w.keys)]);
    lvl_m := lvl_t;
    FOR i IN 1 .. cardinality(w.keys) LOOP
      CONTINUE WHEN th_first[i] = th_first[i + 1];
      FOR unit IN 1 .. 2 LOOP
        IF unit = 1 THEN lim := lim_t[i]; used := wt[i]; ELSE lim := lim_m[i]; used := wm[i]; END IF;
        level := NULL;
        IF lim <= 0 THEN
          IF used <= 0 THEN level := used * 100 + 1; END IF;
        ELSIF lim > 0 THEN
          FOR j IN th_first[i] .. th_first[i + 1] - 1 LOOP
            IF used * 100 < th[j] * lim THEN level := th[j] * lim; EXIT; END IF;
          END LOOP;
        END IF;
        IF unit = 1 THEN lvl_t[i] := level; ELSE lvl_m[i] := level; END IF;
      END LOOP;
    END LOOP;
    status := array_fill(NULL::text, ARRAY[cnt]);

    FOR n IN 1 .. cnt LOOP
      IF NOT fresh[n] THEN
        status[n] := 'stale';
        IF mine[n] THEN taken_out := taken_out || rid[n]; END IF;
        CONTINUE;
      END IF;
      IF NOT mine[n] THEN
        status[n] := 'duplicate';
        settled := settled || rid[n];
        CONTINUE;
      END IF;
      dt := at_t[n]; dm := at_m[n]; now_ := at_now[n];
      IF NOT in_tx THEN
        due := false;
        IF dt > 0 OR dm > 0 THEN
          FOR j IN first[n] .. first[n + 1] - 1 LOOP
            q := w.places[j];
            IF (dt > 0 AND (wt[q] + dt) * 100 >= lvl_t[q]) OR (dm > 0 AND (wm[q] + dm) * 100 >= lvl_m[q]) THEN
              due := true;
              EXIT;
            END IF;
            CONTINUE WHEN NOT proj[q];
            elapsed := now_ - w_start[q];
            CONTINUE WHEN elapsed < 3600000;
            FOR unit IN 1 .. 2 LOOP
              IF unit = 1 THEN lim := lim_t[q]; after := wt[q] + dt; ELSE lim := lim_m[q]; after := wm[q] + dm; END IF;
              CONTINUE WHEN lim IS NULL;
              IF after < lim AND NOT (after::float8 < lim::float8 * 0.25)
                 AND now_ + ceil(((lim - after)::float8 * elapsed) / after::float8) < w_end[q] THEN
                due := true;
              END IF;
            END LOOP;
            EXIT WHEN due;
          END LOOP;
        END IF;
        -- An overrun fires its alert once per model and hour: only the first settle of the hour to
        -- carry one needs the transaction that records it (alert-planning.ts overrunAlertRow).
        IF NOT due AND has_overrun[n] THEN
          due := NOT EXISTS (SELECT 1 FROM alerts a WHERE a.budget_key = settles->(n - 1)->'overrun'->>'key'
                               AND a.window_start = (settles->(n - 1)->'overrun'->>'windowStart')::bigint AND a.kind = 'overrun' AND a.threshold = 0);
        END IF;
        IF due THEN
          status[n] := 'alerts';
          taken_out := taken_out || rid[n];
          CONTINUE;
        END IF;
      END IF;
      status[n] := 'ok';
      settled := settled || rid[n];
      FOR j IN first[n] .. first[n + 1] - 1 LOOP
        q := w.places[j];
        ut := ut || wt[q]; um := um || wm[q]; uo := uo || wo[q];
      END LOOP;
      -- Carried on to the settles after it, and written once at the end.
      FOR j IN first[n] .. first[n + 1] - 1 LOOP
        q := w.places[j];
        add_t[q] := add_t[q] + dt;
        add_m[q] := add_m[q] + dm;
        IF NOT w.shared[q] THEN
          wt[q] := wt[q] + dt;
          wm[q] := wm[q] + dm;
          IF dt > 0 OR dm > 0 THEN
            wo[q] := LEAST(COALESCE(wo[q], w.newest[q]), w.newest[q]);
          END IF;
          CONTINUE;
        END IF;
        -- Every window of the budget in this batch that holds this bucket counts it (two, when
        -- clocks straddle a bucket's edge).
        FOREACH sibling IN ARRAY array_positions(w.budget_keys, w.budget_keys[q]) LOOP
          CONTINUE WHEN NOT (w.newest[q] <= w.newest[sibling] AND w.newest[q] > w.newest[sibling] - w.span[sibling]) AND sibling <> q;
          wt[sibling] := wt[sibling] + dt;
          wm[sibling] := wm[sibling] + dm;
          IF dt > 0 OR dm > 0 THEN
            wo[sibling] := LEAST(COALESCE(wo[sibling], w.newest[q]), w.newest[q]);
          END IF;
        END LOOP;
      END LOOP;
    END LOOP;

    IF cardinality(taken_out) > 0 THEN
      -- A later settle of the same request (a duplicate of one taken out) would have written it.
      IF EXISTS (SELECT 1 FROM unnest(rid) AS r(id) WHERE r.id = ANY(taken_out) GROUP BY r.id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'lq_settle_many: a request settled twice in one batch, once left out' USING ERRCODE = 'unique_violation';
      END IF;
      DELETE FROM ledger WHERE request_id = ANY(taken_out);
      written := written - taken_out;
    END IF;

    -- The newest bucket's counter of every window the batch added to, and the running totals whose
    -- window holds that bucket, once per budget.
    WITH bumped AS (
      UPDATE usage_counters c SET tokens = c.tokens + x.t, micros = c.micros + x.m
      FROM (SELECT a.key, a.newest, a.t, a.m, a.i FROM unnest(w.budget_keys, w.newest, add_t, add_m) WITH ORDINALITY AS a(key, newest, t, m, i)
            WHERE a.t <> 0 OR a.m <> 0) x
      WHERE c.budget_key = x.key AND c.bucket_start = x.newest
      RETURNING x.i)
    SELECT array_agg(g.i IS NOT NULL ORDER BY a.i) INTO grown
    FROM generate_series(1, cardinality(w.keys)) AS a(i) LEFT JOIN bumped g ON g.i = a.i;
    -- A counter not there yet (a new bucket's first settle, or one retired meanwhile by an
    -- instance whose clock is ahead) is written by lq_count_settle, with its running total.
    FOR i IN 1 .. cardinality(w.keys) LOOP
      CONTINUE WHEN grown[i] OR (add_t[i] = 0 AND add_m[i] = 0);
      PERFORM lq_count_settle(w.args[i], u.cur_tokens[i], u.cur_micros[i], add_t[i], add_m[i]);
      add_t[i] := 0;
      add_m[i] := 0;
    END LOOP;
    UPDATE window_totals wt2 SET tokens = wt2.tokens + x.t, micros = wt2.micros + x.m,
      oldest_used = CASE WHEN x.o IS NULL THEN wt2.oldest_used ELSE LEAST(COALESCE(wt2.oldest_used, x.o), x.o) END
    FROM (SELECT tot.budget_key, SUM(a.t) AS t, SUM(a.m) AS m, MIN(a.newest) FILTER (WHERE a.t > 0 OR a.m > 0) AS o
          FROM unnest(w.budget_keys, w.newest, w.counts, w.span, add_t, add_m) AS a(key, newest, n, span, t, m)
          CROSS JOIN LATERAL (SELECT r.budget_key, r.bucket_start FROM window_totals r WHERE r.budget_key = a.key OFFSET 0) tot
          WHERE (a.t <> 0 OR a.m <> 0) AND a.n > 1 AND a.newest <= tot.bucket_start AND a.newest > tot.bucket_start - a.span
          GROUP BY tot.budget_key) x
    WHERE wt2.budget_key = x.budget_key;

    -- The holds (of duplicates too) are locked first, in id order, as every path that deletes holds
    -- locks them; then their budget rows in one statement, so their reservations change once each.
    PERFORM 1 FROM holds h WHERE h.id = ANY(settled) ORDER BY h.id FOR UPDATE;
    DELETE FROM hold_budgets WHERE hold_id = ANY(settled);
    DELETE FROM holds WHERE id = ANY(settled);
    RETURN jsonb_build_object('status', to_jsonb(status),
      'ids', (SELECT COALESCE(jsonb_agg(jsonb_build_array(e.key, e.value)), '[]') FROM jsonb_each(written) AS e),
      'used', jsonb_build_array(to_jsonb(ut), to_jsonb(um), to_jsonb(uo)),
      'entries', (SELECT COALESCE(jsonb_agg(to_jsonb(l)), '[]') FROM ledger l
                  WHERE l.request_id = ANY(ARRAY(SELECT rid[n] FROM generate_subscripts(status, 1) AS n WHERE status[n] = 'duplicate'))));
  END $fn$;

  -- Reservations and lease extensions in arrival order (lq_meter_batch's rules, and its argument
  -- with the budgets' windows listed once and each item's rules: sharedWindows()), in the shape of
  -- lq_settle_many:
  --
  -- - before the scope locks: each item's fields, rules and windows' places, a statement each, and
  --   the holds of the reservations without rate limits written as if fully granted;
  -- - under them: the fingerprints, the windows' usage and the budgets' reservations, a statement
  --   each; in the loop, lq_admit_each's arithmetic on arrays and the reservations carried to the
  --   items after it; then the holds refused taken out and those granted less changed, and the
  --   holds' budget rows written in one statement.
  --
  -- What is rarer keeps its own statements in the loop: an extension (its hold read and grown) and
  -- a reservation with rate limits (its hold written there, after its counts). A hold id taken
  -- already is answered "exists".
  --
  -- Answers {"status": per item "stale" | "unknown" | "subject" | "exists" | "decided", "extra":
  -- per item null or what lq_meter_batch answered besides (an extension's grown hold or other
  -- subject, a reservation's rate checks and the limit that refused it), "ok", "blocking",
  -- "granted": [tokens[], micros[], output[]] per item, "used": [tokens[], micros[], oldest[]] and
  -- "reserved": [tokens[], micros[]], each item's budgets in turn for every item "decided"}.
  CREATE FUNCTION lq_meter_many(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $fn$
  DECLARE
    items jsonb := p->'items';
    cnt int := jsonb_array_length(items);
    lk record;
    fresh boolean[];
    w record;
    u record;
    r_keys text[]; r_t bigint[]; r_m bigint[];
    -- The items (by number), and their budgets (first[n] .. first[n + 1] - 1): window, reservation, rules.
    op text[]; has_rates boolean[]; hid text[];
    q_tok float8[]; q_mic float8[]; q_want float8[]; q_min float8[]; q_price float8[]; q_ceiling float8[]; q_free boolean[];
    first int[]; rpos int[]; on_limit text[]; limit_t bigint[]; limit_m bigint[];
    status text[]; extra jsonb[];
    oks boolean[]; blocks int[]; g_t bigint[]; g_m bigint[]; g_o bigint[];
    ut bigint[] := '{}'; um bigint[] := '{}'; uo bigint[] := '{}'; rt bigint[] := '{}'; rm bigint[] := '{}';
    -- Reservations without rate limits: each one's hold as if fully granted (written before the
    -- locks), whether this call wrote it, and those the decisions then take out or change.
    full_t bigint[]; full_m bigint[]; full_o bigint[]; held boolean[];
    unheld text[] := '{}'; regranted int[] := '{}';
    hb_holds text[] := '{}'; hb_keys text[] := '{}'; hb_t bigint[] := '{}'; hb_m bigint[] := '{}';
    item jsonb; before holds; grown holds; rates jsonb; already boolean; checks jsonb; limited jsonb; h jsonb;
    j0 int; mine int[];
    ok boolean; blocking int; tok bigint; mic bigint; outp bigint; add_t bigint; add_m bigint;
    scale float8; room float8; micros_room float8; tightest int; tightest_room float8; downgrade int; granted float8;
    extended boolean := false;
  BEGIN
    -- Holds only: a database crash may lose the last ones, as it loses the requests they hold for.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT COALESCE(array_agg(s.v->>'op' ORDER BY s.n), '{}'),
      COALESCE(array_agg(jsonb_typeof(s.v->'rates') = 'object' ORDER BY s.n), '{}'),
      COALESCE(array_agg(COALESCE(s.v->'hold'->>'id', s.v->>'holdId') ORDER BY s.n), '{}'),
      COALESCE(array_agg((s.v->'quote'->>'tokens')::float8 ORDER BY s.n), '{}'), COALESCE(array_agg((s.v->'quote'->>'micros')::float8 ORDER BY s.n), '{}'),
      COALESCE(array_agg(COALESCE((s.v->'quote'->>'want')::float8, 0) ORDER BY s.n), '{}'), COALESCE(array_agg(COALESCE((s.v->'quote'->>'min')::float8, 0) ORDER BY s.n), '{}'),
      COALESCE(array_agg(COALESCE((s.v->'quote'->>'price')::float8, 0) ORDER BY s.n), '{}'), COALESCE(array_agg((s.v->'quote'->>'ceiling')::float8 ORDER BY s.n), '{}'),
      COALESCE(array_agg(COALESCE((s.v->'quote'->>'free')::boolean, false) ORDER BY s.n), '{}'),
      COALESCE(array_agg(jsonb_array_length(s.v->'budgets') ORDER BY s.n), '{}')
    INTO op, has_rates, hid, q_tok, q_mic, q_want, q_min, q_price, q_ceiling, q_free, first
    FROM jsonb_array_elements(items) WITH ORDINALITY AS s(v, n);
    first := lq_places(first);
    w := lq_window_list(p->'windows', items);
    -- Each budget of each item, in turn: its rules ([onLimit, limitTokens, limitMicros]: a grant
    -- or a failover may make them its own), and its place among the batch's budgets (r_keys).
    WITH r AS MATERIALIZED (SELECT k.key, row_number() OVER (ORDER BY k.key) AS i FROM (SELECT DISTINCT b.key FROM unnest(w.budget_keys) AS b(key)) k)
    SELECT (SELECT COALESCE(array_agg(r.key ORDER BY r.i), '{}') FROM r),
      (SELECT COALESCE(array_agg(r.i::int ORDER BY p.j), '{}') FROM unnest(w.places) WITH ORDINALITY AS p(place, j) JOIN r ON r.key = w.budget_keys[p.place])
    INTO r_keys, rpos;
    SELECT COALESCE(array_agg(x.r->>0 ORDER BY it.n, x.k), '{}'),
      COALESCE(array_agg((x.r->>1)::bigint ORDER BY it.n, x.k), '{}'), COALESCE(array_agg((x.r->>2)::bigint ORDER BY it.n, x.k), '{}')
    INTO on_limit, limit_t, limit_m
    FROM jsonb_array_elements(items) WITH ORDINALITY AS it(v, n)
    CROSS JOIN LATERAL jsonb_array_elements(it.v->'rules') WITH ORDINALITY AS x(r, k);
    IF cardinality(w.places) <> first[cnt + 1] - 1 OR cardinality(rpos) <> first[cnt + 1] - 1 OR cardinality(on_limit) <> first[cnt + 1] - 1 THEN
      RAISE EXCEPTION 'lq_meter_many: a budget without its window';
    END IF;
    -- The holds of the reservations without rate limits, written before the locks as if fully
    -- granted (what lq_admit_each grants when the budgets have room for all the output wanted): no
    -- one else sees them before the commit, and the decisions under the locks take out those
    -- refused and change those granted less. A hold id taken already is answered "exists".
    full_t := array_fill(NULL::bigint, ARRAY[cnt]); full_m := full_t; full_o := full_t;
    FOR n IN 1 .. cnt LOOP
      CONTINUE WHEN op[n] <> 'reserve' OR has_rates[n];
      full_t[n] := q_tok[n] + q_want[n];
      full_m[n] := q_mic[n] + ceil(q_want[n] * q_price[n] / 1000000);
      full_o[n] := q_want[n];
    END LOOP;
    WITH added AS (
      INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
      SELECT hid[o.n], h.v->>'instance', h.v->>'user', h.v->>'project', h.v->>'key', full_t[o.n], full_m[o.n], full_o[o.n],
        (h.v->>'createdAt')::bigint, (h.v->>'expiresAt')::bigint, h.v->>'pending', (h.v->>'createdAt')::bigint
      FROM generate_subscripts(full_t, 1) AS o(n) CROSS JOIN LATERAL (SELECT items->(o.n - 1)->'hold' AS v) h
      WHERE full_t[o.n] IS NOT NULL
      ORDER BY o.n
      ON CONFLICT (id) DO NOTHING
      RETURNING id)
    -- An item wrote its hold when the hold is this call's and no item before it had its id.
    SELECT COALESCE(array_agg(a.id IS NOT NULL AND NOT hid[o.n] = ANY(hid[1 : o.n - 1]) ORDER BY o.n), '{}') INTO held
    FROM generate_subscripts(full_t, 1) AS o(n) LEFT JOIN added a ON a.id = hid[o.n] AND full_t[o.n] IS NOT NULL;
    status := array_fill(NULL::text, ARRAY[cnt]);
    extra := array_fill(NULL::jsonb, ARRAY[cnt]);
    oks := array_fill(NULL::boolean, ARRAY[cnt]);
    blocks := array_fill(NULL::int, ARRAY[cnt]);
    g_t := array_fill(NULL::bigint, ARRAY[cnt]); g_m := g_t; g_o := g_t;

    lk := lq_lock_versions(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    fresh := lq_fresh(items, lk.scopes, lk.versions);
    u := lq_window_usage(w.args, w.budget_keys, w.newest, w.counts, true, true);
    SELECT COALESCE(array_agg(COALESCE(h.tokens, 0) ORDER BY r.i), '{}'), COALESCE(array_agg(COALESCE(h.micros, 0) ORDER BY r.i), '{}')
    INTO r_t, r_m
    FROM unnest(r_keys) WITH ORDINALITY AS r(key, i)
    LEFT JOIN LATERAL (SELECT br.tokens, br.micros FROM budget_reservations br WHERE br.budget_key = r.key OFFSET 0) h ON true;

    FOR n IN 1 .. cnt LOOP
      IF NOT fresh[n] THEN
        status[n] := 'stale';
        IF held[n] THEN unheld := unheld || hid[n]; END IF;
        CONTINUE;
      END IF;
      IF full_t[n] IS NOT NULL AND NOT held[n] THEN
        status[n] := 'exists';
        CONTINUE;
      END IF;
      IF op[n] = 'extend' THEN
        item := items->(n - 1);
        SELECT * INTO before FROM holds WHERE id = hid[n];
        IF NOT FOUND THEN
          status[n] := 'unknown';
          CONTINUE;
        END IF;
        -- The caller locked the scopes of the subject it believes the hold has: it must be this one.
        IF before.user_id IS DISTINCT FROM item->'subject'->>'user' OR before.project_id IS DISTINCT FROM item->'subject'->>'project'
           OR before.key_id IS DISTINCT FROM item->'subject'->>'key' THEN
          status[n] := 'subject';
          extra[n] := jsonb_build_object('subject', jsonb_build_object('user', before.user_id, 'project', before.project_id, 'key', before.key_id));
          CONTINUE;
        END IF;
      END IF;

      -- lq_admit_each, on the arrays.
      j0 := first[n];
      tightest := -1; tightest_room := 'Infinity'; downgrade := -1;
      FOR j IN j0 .. first[n + 1] - 1 LOOP
        room := 'Infinity';
        IF on_limit[j] <> 'alert-only' THEN
          scale := CASE WHEN on_limit[j] = 'downgrade' AND q_ceiling[n] IS NOT NULL THEN q_ceiling[n] ELSE 1 END;
          IF limit_t[j] IS NOT NULL THEN
            room := floor(limit_t[j]::float8 * scale) - u.tokens[w.places[j]] - r_t[rpos[j]] - q_tok[n];
          END IF;
          IF limit_m[j] IS NOT NULL AND NOT q_free[n] THEN
            micros_room := floor(limit_m[j]::float8 * scale) - u.micros[w.places[j]] - r_m[rpos[j]] - q_mic[n];
            room := LEAST(room, CASE WHEN micros_room < 0 THEN -1 WHEN q_price[n] > 0 THEN floor(micros_room * 1000000 / q_price[n]) ELSE 'Infinity' END);
          END IF;
        END IF;
        IF room < tightest_room THEN
          tightest_room := room;
          tightest := j - j0;
        END IF;
        IF downgrade < 0 AND (on_limit[j] = 'whole' OR (on_limit[j] = 'downgrade' AND q_ceiling[n] IS NULL)) AND room < q_want[n] THEN
          downgrade := j - j0;
        END IF;
        ut := ut || u.tokens[w.places[j]]; um := um || u.micros[w.places[j]]; uo := uo || u.oldest[w.places[j]];
        rt := rt || r_t[rpos[j]]; rm := rm || r_m[rpos[j]];
      END LOOP;
      tok := NULL; mic := NULL; outp := NULL; blocking := NULL;
      IF tightest_room < q_min[n] OR tightest_room < 0 THEN
        ok := false; blocking := tightest;
      ELSIF downgrade >= 0 THEN
        ok := false; blocking := downgrade;
      ELSE
        granted := LEAST(q_want[n], tightest_room);
        ok := true;
        tok := q_tok[n] + granted;
        mic := q_mic[n] + ceil(granted * q_price[n] / 1000000);
        outp := granted;
      END IF;
      status[n] := 'decided';
      oks[n] := ok; blocks[n] := blocking; g_t[n] := tok; g_m[n] := mic; g_o[n] := outp;

      IF op[n] = 'extend' THEN
        grown := NULL;
        add_t := (items->(n - 1)->'quote'->>'tokens')::bigint;
        add_m := (items->(n - 1)->'quote'->>'micros')::bigint;
        IF ok THEN
          -- Released or expired while this waited for the lock: nothing to grow.
          UPDATE holds SET tokens = tokens + add_t, micros = micros + add_m, output_tokens = output_tokens + add_t,
            expires_at = (item->>'expiresAt')::bigint,
            delivered_tokens = GREATEST(delivered_tokens, COALESCE((item->>'delivered')::bigint, delivered_tokens)),
            updated_at = (item->>'now')::bigint
          WHERE id = hid[n] RETURNING * INTO grown;
          IF NOT FOUND THEN
            status[n] := 'unknown';
            ut := ut[1 : cardinality(ut) - (first[n + 1] - j0)]; um := um[1 : cardinality(um) - (first[n + 1] - j0)];
            uo := uo[1 : cardinality(uo) - (first[n + 1] - j0)]; rt := rt[1 : cardinality(rt) - (first[n + 1] - j0)];
            rm := rm[1 : cardinality(rm) - (first[n + 1] - j0)];
            CONTINUE;
          END IF;
        END IF;
        extra[n] := jsonb_build_object('hold', to_jsonb(grown));
        extended := extended OR ok;
      ELSE
        add_t := tok;
        add_m := mic;
        IF has_rates[n] THEN
          item := items->(n - 1);
          h := item->'hold';
          rates := item->'rates';
          already := COALESCE((rates->>'alreadyCounted')::boolean, false);
          checks := lq_rate_checks(rates);
          limited := lq_rate_decide(checks, (rates->>'tokens')::bigint, (rates->>'now')::bigint, already);
          IF limited IS NOT NULL THEN
            oks[n] := false; blocks[n] := NULL; g_t[n] := NULL; g_m[n] := NULL; g_o[n] := NULL;
            extra[n] := jsonb_build_object('rates', checks, 'rateLimited', limited);
            CONTINUE;
          END IF;
          extra[n] := jsonb_build_object('rates', checks);
          IF ok THEN
            INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
            VALUES (hid[n], h->>'instance', h->>'user', h->>'project', h->>'key', tok, mic, outp,
              (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint, h->>'pending', (h->>'createdAt')::bigint)
            ON CONFLICT (id) DO NOTHING;
            IF NOT FOUND THEN
              status[n] := 'exists';
              extra[n] := NULL;
              ut := ut[1 : cardinality(ut) - (first[n + 1] - j0)]; um := um[1 : cardinality(um) - (first[n + 1] - j0)];
              uo := uo[1 : cardinality(uo) - (first[n + 1] - j0)]; rt := rt[1 : cardinality(rt) - (first[n + 1] - j0)];
              rm := rm[1 : cardinality(rm) - (first[n + 1] - j0)];
              CONTINUE;
            END IF;
            IF NOT already THEN
              PERFORM lq_rate_count(checks, (rates->>'tokens')::bigint, (rates->>'now')::bigint);
            END IF;
          END IF;
        ELSIF NOT ok THEN
          unheld := unheld || hid[n];
        ELSIF tok IS DISTINCT FROM full_t[n] OR mic IS DISTINCT FROM full_m[n] OR outp IS DISTINCT FROM full_o[n] THEN
          regranted := regranted || n;
        END IF;
      END IF;

      -- What this item now holds is held for the items after it, and written with the others.
      IF ok THEN
        mine := '{}';
        FOR j IN j0 .. first[n + 1] - 1 LOOP
          CONTINUE WHEN rpos[j] = ANY(mine);
          mine := mine || rpos[j];
          r_t[rpos[j]] := r_t[rpos[j]] + add_t;
          r_m[rpos[j]] := r_m[rpos[j]] + add_m;
          hb_holds := hb_holds || hid[n];
          hb_keys := hb_keys || r_keys[rpos[j]];
          hb_t := hb_t || add_t;
          hb_m := hb_m || add_m;
        END LOOP;
      END IF;
    END LOOP;

    IF cardinality(unheld) > 0 THEN
      -- A later item with the same hold id would have written it.
      IF EXISTS (SELECT 1 FROM unnest(hid) AS h(id) WHERE h.id = ANY(unheld) GROUP BY h.id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'lq_meter_many: a hold id twice in one batch, once refused' USING ERRCODE = 'unique_violation';
      END IF;
      DELETE FROM holds WHERE id = ANY(unheld);
    END IF;
    IF cardinality(regranted) > 0 THEN
      UPDATE holds SET tokens = g_t[x.n], micros = g_m[x.n], output_tokens = g_o[x.n] FROM unnest(regranted) AS x(n) WHERE id = hid[x.n];
    END IF;

    -- A budget created while a stream ran joins its hold; an extension adds to the rows it has. The
    -- reservations these rows change are locked first, in key order (the insert's triggers would
    -- take the extended ones' before the new ones'). New holds' rows are new: a plain insert, whose
    -- trigger takes the reservations in key order.
    IF extended THEN
      PERFORM 1 FROM budget_reservations br WHERE br.budget_key = ANY(hb_keys) ORDER BY br.budget_key FOR UPDATE;
      INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
      SELECT x.hold_id, x.budget_key, SUM(x.t), SUM(x.m) FROM unnest(hb_holds, hb_keys, hb_t, hb_m) AS x(hold_id, budget_key, t, m)
      GROUP BY x.hold_id, x.budget_key
      ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = hold_budgets.tokens + excluded.tokens, micros = hold_budgets.micros + excluded.micros;
    ELSIF cardinality(hb_keys) > 0 THEN
      INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
      SELECT x.hold_id, x.budget_key, x.t, x.m FROM unnest(hb_holds, hb_keys, hb_t, hb_m) AS x(hold_id, budget_key, t, m);
    END IF;
    RETURN jsonb_build_object('status', to_jsonb(status), 'extra', to_jsonb(extra), 'ok', to_jsonb(oks), 'blocking', to_jsonb(blocks),
      'granted', jsonb_build_array(to_jsonb(g_t), to_jsonb(g_m), to_jsonb(g_o)),
      'used', jsonb_build_array(to_jsonb(ut), to_jsonb(um), to_jsonb(uo)), 'reserved', jsonb_build_array(to_jsonb(rt), to_jsonb(rm)));
  END $fn$;
`;
