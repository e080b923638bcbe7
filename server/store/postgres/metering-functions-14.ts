/**
 * Migration 14: the batch functions' windows as text. Migration 13's lq_meter_many and
 * lq_settle_many are given every window of the batch (its budget, limits, thresholds, bucket and
 * ledger filter) in their jsonb argument, though only the rare paths use them: a window counted
 * again when its newest bucket moved on, a counter written for a new bucket. Every other step takes
 * the typed columns. Yet each call paid for turning that JSON into jsonb before the function ran:
 * with 64 requests in flight, about 150 windows a batch, the larger part of the cost of reading the
 * argument (BENCHMARKS.md, issue 17). Here the windows come as a text parameter of their own,
 * turned into jsonb only on those paths, and p keeps what each item alone has.
 *
 * Nothing else changes: the statements, the rules and the answers are migration 13's. Its
 * functions stay, as every migration's functions do (upgrading still means stopping every
 * instance first: README, Several instances).
 *
 * Released with migration 14: never edited, a change is a new migration.
 */
export const MIGRATION_14_SQL = `
  -- lq_window_usage of migration 13, given the windows as JSON text, parsed only for a window whose
  -- sums are counted again.
  CREATE FUNCTION lq_window_usage(p_windows text, p_budget_keys text[], p_newest bigint[], p_counts bigint[], p_starts bigint[], p_steps bigint[],
    p_write boolean, p_ledger_ok boolean,
    OUT tokens bigint[], OUT micros bigint[], OUT oldest bigint[], OUT cur_tokens bigint[], OUT cur_micros bigint[], OUT from_ledger boolean)
    LANGUAGE plpgsql AS $fn$
  DECLARE
    windows jsonb;
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
      COALESCE(array_agg(COALESCE(w.n > 1 AND t.bucket_start IS NOT NULL AND w.start >= t.bucket_start - (w.n - 1) * w.step, false) ORDER BY w.i), '{}')
    INTO tokens, micros, oldest, cur_tokens, cur_micros, read, moved
    FROM unnest(p_budget_keys, p_newest, p_counts, p_starts, p_steps) WITH ORDINALITY AS w(key, newest, n, start, step, i)
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
      windows := COALESCE(windows, p_windows::jsonb);
      s := lq_window_sums(windows->(i - 1), p_write);
      tokens[i] := s.tokens; micros[i] := s.micros; oldest[i] := s.oldest; cur_tokens[i] := s.cur_tokens; cur_micros[i] := s.cur_micros;
    END LOOP;
  END $fn$;

  -- lq_settle_many of migration 13, given the windows as JSON text (p_windows, in key order, as
  -- p.windows was), parsed only where a window is counted again or a counter first written: p is
  -- {"inTransaction", "settles": [{"entry", "overrun"?}]}. The rest as in 13. Same answer.
  CREATE FUNCTION lq_settle_many(p jsonb, p_windows text, p_scopes text[], p_prints text[], p_item_scopes text[], p_item_of int[],
    w_budget_keys text[], w_newest bigint[], w_counts bigint[], w_starts bigint[], w_steps bigint[], places int[], first int[],
    w_span bigint[], w_shared boolean[], lim_t bigint[], lim_m bigint[], proj boolean[], w_end bigint[],
    th numeric[], th_first int[], rid text[], at_t bigint[], at_m bigint[], at_now bigint[], has_overrun boolean[])
    RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $fn$
  DECLARE
    in_tx boolean := (p->>'inTransaction')::boolean;
    windows_arg jsonb;
    settles jsonb := p->'settles';
    cnt int := cardinality(rid);
    windows int := cardinality(w_budget_keys);
    fresh boolean[];
    u record;
    -- The windows (by place): sums carried through the batch, what the batch adds, and the next
    -- threshold level (x 100) of each unit.
    wt bigint[]; wm bigint[]; wo bigint[];
    add_t bigint[]; add_m bigint[];
    lvl_t numeric[]; lvl_m numeric[];
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
    IF cardinality(first) <> cnt + 1 OR cardinality(places) <> first[cnt + 1] - 1 OR cardinality(th_first) <> windows + 1
       OR cardinality(th) <> th_first[windows + 1] - 1 THEN
      RAISE EXCEPTION 'lq_settle_many: a budget without its window';
    END IF;
    written := lq_write_entries(settles);
    -- A settle wrote its entry when the entry is this call's and no settle before it had its request id.
    SELECT COALESCE(array_agg(written ? r.id AND NOT r.id = ANY(rid[1 : r.n - 1]) ORDER BY r.n), '{}') INTO mine
    FROM unnest(rid) WITH ORDINALITY AS r(id, n);

    fresh := lq_lock_fresh(p_scopes, p_prints, p_item_scopes, p_item_of);
    u := lq_window_usage(p_windows, w_budget_keys, w_newest, w_counts, w_starts, w_steps, true, written = '{}');
    IF u.from_ledger THEN
      -- A bucket to count from the ledger (the first settle of a new day, say), which must not count
      -- the entries written above, twice: they are taken out while it is counted, and written again.
      DELETE FROM ledger WHERE request_id = ANY(ARRAY(SELECT jsonb_object_keys(written)));
      u := lq_window_usage(p_windows, w_budget_keys, w_newest, w_counts, w_starts, w_steps, true, true);
      written := lq_write_entries(settles);
    END IF;
    wt := u.tokens; wm := u.micros; wo := u.oldest;
    add_t := array_fill(0::bigint, ARRAY[windows]);
    add_m := add_t;
    -- The next threshold of each window's usage, in each unit (x 100: a settle reaching it may fire
    -- an alert); lq_alerts_due_each's rule for a limit of 0 or less: any usage while there is none.
    lvl_t := array_fill(NULL::numeric, ARRAY[windows]);
    lvl_m := lvl_t;
    FOR i IN 1 .. windows LOOP
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
            q := places[j];
            IF (dt > 0 AND (wt[q] + dt) * 100 >= lvl_t[q]) OR (dm > 0 AND (wm[q] + dm) * 100 >= lvl_m[q]) THEN
              due := true;
              EXIT;
            END IF;
            CONTINUE WHEN NOT proj[q];
            elapsed := now_ - w_starts[q];
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
        q := places[j];
        ut := ut || wt[q]; um := um || wm[q]; uo := uo || wo[q];
      END LOOP;
      -- Carried on to the settles after it, and written once at the end.
      FOR j IN first[n] .. first[n + 1] - 1 LOOP
        q := places[j];
        add_t[q] := add_t[q] + dt;
        add_m[q] := add_m[q] + dm;
        IF NOT w_shared[q] THEN
          wt[q] := wt[q] + dt;
          wm[q] := wm[q] + dm;
          IF dt > 0 OR dm > 0 THEN
            wo[q] := LEAST(COALESCE(wo[q], w_newest[q]), w_newest[q]);
          END IF;
          CONTINUE;
        END IF;
        -- Every window of the budget in this batch that holds this bucket counts it (two, when
        -- clocks straddle a bucket's edge).
        FOREACH sibling IN ARRAY array_positions(w_budget_keys, w_budget_keys[q]) LOOP
          CONTINUE WHEN NOT (w_newest[q] <= w_newest[sibling] AND w_newest[q] > w_newest[sibling] - w_span[sibling]) AND sibling <> q;
          wt[sibling] := wt[sibling] + dt;
          wm[sibling] := wm[sibling] + dm;
          IF dt > 0 OR dm > 0 THEN
            wo[sibling] := LEAST(COALESCE(wo[sibling], w_newest[q]), w_newest[q]);
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
      FROM (SELECT a.key, a.newest, a.t, a.m, a.i FROM unnest(w_budget_keys, w_newest, add_t, add_m) WITH ORDINALITY AS a(key, newest, t, m, i)
            WHERE a.t <> 0 OR a.m <> 0) x
      WHERE c.budget_key = x.key AND c.bucket_start = x.newest
      RETURNING x.i)
    SELECT array_agg(g.i IS NOT NULL ORDER BY a.i) INTO grown
    FROM generate_series(1, windows) AS a(i) LEFT JOIN bumped g ON g.i = a.i;
    -- A counter not there yet (a new bucket's first settle, or one retired meanwhile by an
    -- instance whose clock is ahead) is written by lq_count_settle, with its running total.
    FOR i IN 1 .. windows LOOP
      CONTINUE WHEN grown[i] OR (add_t[i] = 0 AND add_m[i] = 0);
      windows_arg := COALESCE(windows_arg, p_windows::jsonb);
      PERFORM lq_count_settle(windows_arg->(i - 1), u.cur_tokens[i], u.cur_micros[i], add_t[i], add_m[i]);
      add_t[i] := 0;
      add_m[i] := 0;
    END LOOP;
    UPDATE window_totals wt2 SET tokens = wt2.tokens + x.t, micros = wt2.micros + x.m,
      oldest_used = CASE WHEN x.o IS NULL THEN wt2.oldest_used ELSE LEAST(COALESCE(wt2.oldest_used, x.o), x.o) END
    FROM (SELECT tot.budget_key, SUM(a.t) AS t, SUM(a.m) AS m, MIN(a.newest) FILTER (WHERE a.t > 0 OR a.m > 0) AS o
          FROM unnest(w_budget_keys, w_newest, w_counts, w_span, add_t, add_m) AS a(key, newest, n, span, t, m)
          CROSS JOIN LATERAL (SELECT r.budget_key, r.bucket_start FROM window_totals r WHERE r.budget_key = a.key OFFSET 0) tot
          WHERE (a.t <> 0 OR a.m <> 0) AND a.n > 1 AND a.newest <= tot.bucket_start AND a.newest > tot.bucket_start - a.span
          GROUP BY tot.budget_key) x
    WHERE wt2.budget_key = x.budget_key;

    -- The holds (of duplicates too) are locked first, in id order, as every path that deletes holds
    -- locks them, and deleted; then (the WITH's delete runs once the statement's own is done) their
    -- budget rows, all at once, so their reservations change once each. One statement for the three.
    WITH locked AS MATERIALIZED (SELECT h.id FROM holds h WHERE h.id = ANY(settled) ORDER BY h.id FOR UPDATE),
    budget_rows AS (DELETE FROM hold_budgets WHERE hold_id = ANY(settled))
    DELETE FROM holds WHERE id IN (SELECT l.id FROM locked l);
    RETURN jsonb_build_object('status', to_jsonb(status),
      'ids', (SELECT COALESCE(jsonb_agg(jsonb_build_array(e.key, e.value)), '[]') FROM jsonb_each(written) AS e),
      'used', jsonb_build_array(to_jsonb(ut), to_jsonb(um), to_jsonb(uo)),
      'entries', (SELECT COALESCE(jsonb_agg(to_jsonb(l)), '[]') FROM ledger l
                  WHERE l.request_id = ANY(ARRAY(SELECT rid[n] FROM generate_subscripts(status, 1) AS n WHERE status[n] = 'duplicate'))));
  END $fn$;

  -- lq_meter_many of migration 13, given the windows as JSON text (p_windows, in key order, as
  -- p.windows was), parsed only where a window is counted again: p is {"items": [...]} as in 13.
  -- The rest as in 13. Same answer.
  CREATE FUNCTION lq_meter_many(p jsonb, p_windows text, p_scopes text[], p_prints text[], p_item_scopes text[], p_item_of int[],
    w_budget_keys text[], w_newest bigint[], w_counts bigint[], w_starts bigint[], w_steps bigint[], places int[], first int[],
    r_keys text[], rpos int[], on_limit text[], limit_t bigint[], limit_m bigint[],
    op text[], has_rates boolean[], hid text[], q_tok float8[], q_mic float8[], q_want float8[], q_min float8[], q_price float8[], q_ceiling float8[], q_free boolean[])
    RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $fn$
  DECLARE
    items jsonb := p->'items';
    cnt int := cardinality(op);
    fresh boolean[];
    u record;
    r_t bigint[]; r_m bigint[];
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
    IF cardinality(first) <> cnt + 1 OR cardinality(places) <> first[cnt + 1] - 1 OR cardinality(rpos) <> first[cnt + 1] - 1
       OR cardinality(on_limit) <> first[cnt + 1] - 1 THEN
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

    fresh := lq_lock_fresh(p_scopes, p_prints, p_item_scopes, p_item_of);
    u := lq_window_usage(p_windows, w_budget_keys, w_newest, w_counts, w_starts, w_steps, true, true);
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
            room := floor(limit_t[j]::float8 * scale) - u.tokens[places[j]] - r_t[rpos[j]] - q_tok[n];
          END IF;
          IF limit_m[j] IS NOT NULL AND NOT q_free[n] THEN
            micros_room := floor(limit_m[j]::float8 * scale) - u.micros[places[j]] - r_m[rpos[j]] - q_mic[n];
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
        ut := ut || u.tokens[places[j]]; um := um || u.micros[places[j]]; uo := uo || u.oldest[places[j]];
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
