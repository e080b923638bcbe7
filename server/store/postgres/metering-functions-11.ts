/**
 * Migration 11: counters that cost O(1), and admission in batches.
 *
 * - `window_totals` keeps each rolling budget's window total (and the start of its oldest bucket
 *   with usage, for the reset time) as of the window's newest bucket. When the window has moved on,
 *   its counters are summed again in one range scan (once per bucket period, under the scope
 *   locks); every settle into the newest bucket adds to it, as it adds to the bucket's counter.
 *   Reading a budget's usage is thus one or two index probes (lq_window_sums), not 60.
 * - `budget_reservations` keeps what live holds set aside per budget, by triggers on hold_budgets:
 *   one row to read instead of a sum over a table that churns with every request.
 * - lq_meter_batch decides the reservations and lease extensions one instance has at hand in one
 *   turn of its event loop, in one call: every scope row they need is locked once, in text order,
 *   each budget's usage and reservations are read once and kept for the rest of the batch, and the
 *   items are decided in arrival order by the rules of lq_reserve and lq_extend (migrations 7 and
 *   3), one commit for all. Across instances, the batch is what waits for a lock, not the request.
 * - lq_settle_batch brings the group-committed settles (lq_settle and lq_settle_one of migrations
 *   2 and 8) into the same shape: locks once, usage read once per budget and carried through the
 *   batch, each counter and running total written once.
 * - lq_fingerprint is lq_budget_fingerprint (migration 9) with its plans kept between calls.
 * - lq_usage_totals is lq_usage (migration 2) through the totals, without writing them (no lock).
 *
 * The answers carry per budget, in the order of p.budgets, `used`: [tokens, micros, oldest used
 * bucket start or null] and, where admission was decided, `reserved`: [tokens, micros]. The
 * functions of earlier migrations stay as they were, for an instance of an earlier version; such
 * an instance's settles do not add to the totals, so all instances are upgraded together (README,
 * Several instances).
 *
 * Released with migration 11: never edited, a change is a new migration.
 */
export const MIGRATION_11_SQL = `
  -- What the live holds set aside per budget: hold_budgets summed by budget, kept by the triggers
  -- below on every change to it (whichever statement makes it: a batch, a release, an expiry, a
  -- hold deleted with its rows), so reading a budget's reservations is one row, not a scan of a
  -- table whose rows come and go with every request (under load, its index is mostly entries of
  -- rows already deleted and not yet vacuumed).
  CREATE TABLE budget_reservations (
    budget_key TEXT COLLATE "C" PRIMARY KEY,
    tokens     BIGINT NOT NULL,
    micros     BIGINT NOT NULL
  );
  -- No hold may change between the sum and the triggers: an instance still running the version
  -- before waits here until this migration commits.
  LOCK TABLE hold_budgets IN SHARE ROW EXCLUSIVE MODE;
  INSERT INTO budget_reservations (budget_key, tokens, micros)
  SELECT budget_key, SUM(tokens), SUM(micros) FROM hold_budgets GROUP BY budget_key;

  CREATE FUNCTION lq_reservations_added() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    INSERT INTO budget_reservations (budget_key, tokens, micros)
    SELECT a.budget_key, SUM(a.tokens), SUM(a.micros) FROM added a GROUP BY a.budget_key ORDER BY a.budget_key
    ON CONFLICT (budget_key) DO UPDATE SET tokens = budget_reservations.tokens + excluded.tokens, micros = budget_reservations.micros + excluded.micros;
    RETURN NULL;
  END $fn$;
  -- The rows are locked in key order first, as the scopes are, so that two statements changing
  -- the same budgets' rows never wait on each other in a cycle.
  CREATE FUNCTION lq_reservations_removed() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    PERFORM 1 FROM budget_reservations r WHERE r.budget_key IN (SELECT g.budget_key FROM gone g) ORDER BY r.budget_key FOR UPDATE;
    UPDATE budget_reservations r SET tokens = r.tokens - x.t, micros = r.micros - x.m
    FROM (SELECT g.budget_key, SUM(g.tokens) AS t, SUM(g.micros) AS m FROM gone g GROUP BY g.budget_key) x WHERE r.budget_key = x.budget_key;
    RETURN NULL;
  END $fn$;
  CREATE FUNCTION lq_reservations_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    PERFORM 1 FROM budget_reservations r WHERE r.budget_key IN (SELECT n.budget_key FROM after_change n) ORDER BY r.budget_key FOR UPDATE;
    UPDATE budget_reservations r SET tokens = r.tokens + x.t, micros = r.micros + x.m
    FROM (SELECT d.budget_key, SUM(d.t) AS t, SUM(d.m) AS m
          FROM (SELECT n.budget_key, n.tokens AS t, n.micros AS m FROM after_change n
                UNION ALL SELECT o.budget_key, -o.tokens, -o.micros FROM before_change o) d
          GROUP BY d.budget_key) x
    WHERE r.budget_key = x.budget_key;
    RETURN NULL;
  END $fn$;
  CREATE TRIGGER hold_budgets_added AFTER INSERT ON hold_budgets REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION lq_reservations_added();
  CREATE TRIGGER hold_budgets_removed AFTER DELETE ON hold_budgets REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION lq_reservations_removed();
  CREATE TRIGGER hold_budgets_changed AFTER UPDATE ON hold_budgets REFERENCING OLD TABLE AS before_change NEW TABLE AS after_change
    FOR EACH STATEMENT EXECUTE FUNCTION lq_reservations_changed();

  CREATE TABLE window_totals (
    budget_key   TEXT COLLATE "C" PRIMARY KEY,
    bucket_start BIGINT NOT NULL,  -- the newest bucket of the window this is the total of
    tokens       BIGINT NOT NULL,
    micros       BIGINT NOT NULL,
    oldest_used  BIGINT            -- the start of its oldest bucket with usage; NULL: none
  );

  -- lq_budget_fingerprint (migration 9), the same text, in PL/pgSQL: its plans are kept between
  -- calls, where a SQL function with SET clauses is planned again at every call.
  CREATE FUNCTION lq_fingerprint(p_scopes text[]) RETURNS text LANGUAGE plpgsql STABLE SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    budgets_md5 text;
    grants_md5 text;
  BEGIN
    SELECT md5(string_agg(b::text, ',' ORDER BY b.scope, b.period)) INTO budgets_md5 FROM budgets b WHERE b.scope = ANY(p_scopes);
    SELECT md5(string_agg(g.id, ',' ORDER BY g.id)) INTO grants_md5 FROM grants g WHERE g.scope = ANY(p_scopes);
    RETURN COALESCE(budgets_md5, '') || COALESCE(grants_md5, '');
  END $fn$;

  -- A budget's settled usage at the caller's now, and its newest bucket's own sums (which a
  -- settle adds to). p_budget is one budget argument of metering-args.ts.
  --
  -- A calendar or total budget has one bucket: one probe of its counter. A rolling one: its running
  -- total, when that is of this window (and the newest bucket's counter, absent while the bucket
  -- has no usage). When the window has moved on since, its buckets' counters are summed in one
  -- range scan: every bucket with usage since the total was first made has one (each settle writes
  -- its bucket's counter, and a counter retires only once its bucket left every window), so a
  -- missing one is a bucket without usage. With no total yet, or for a window older than the
  -- total's (a clock behind, if only by a bucket), the buckets are counted one by one (lq_bucket_sums, which counts
  -- a bucket without a counter from the ledger and stores one for every bucket).
  --
  -- The total is written back when p_write (the caller holds the scope's lock, so no settle adds to
  -- it meanwhile), never for an older window than it holds.
  CREATE FUNCTION lq_window_sums(p_budget jsonb, p_write boolean,
    OUT tokens bigint, OUT micros bigint, OUT oldest bigint, OUT cur_tokens bigint, OUT cur_micros bigint)
    LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    k text := p_budget->>'key';
    n int := (p_budget->>'count')::int;
    step bigint := (p_budget->>'step')::bigint;
    first bigint := (p_budget->>'start')::bigint;
    newest bigint := first + (n - 1) * step;
    counted boolean;
    tot window_totals;
    s record;
  BEGIN
    SELECT u.tokens, u.micros INTO cur_tokens, cur_micros FROM usage_counters u WHERE u.budget_key = k AND u.bucket_start = newest;
    counted := FOUND;
    IF n = 1 AND counted THEN
      tokens := cur_tokens;
      micros := cur_micros;
      RETURN;
    END IF;
    IF n > 1 THEN
      SELECT * INTO tot FROM window_totals w WHERE w.budget_key = k;
      IF FOUND AND first >= tot.bucket_start - (n - 1) * step THEN
        IF NOT counted THEN
          cur_tokens := 0;
          cur_micros := 0;
        END IF;
        IF tot.bucket_start = newest THEN
          tokens := tot.tokens;
          micros := tot.micros;
          oldest := tot.oldest_used;
          RETURN;
        END IF;
        SELECT COALESCE(SUM(u.tokens), 0)::bigint, COALESCE(SUM(u.micros), 0)::bigint, MIN(u.bucket_start) FILTER (WHERE u.tokens > 0 OR u.micros > 0)
        INTO tokens, micros, oldest
        FROM usage_counters u WHERE u.budget_key = k AND u.bucket_start >= first AND u.bucket_start <= newest;
        IF p_write AND tot.bucket_start < newest THEN
          UPDATE window_totals w SET bucket_start = newest, tokens = lq_window_sums.tokens, micros = lq_window_sums.micros,
            oldest_used = lq_window_sums.oldest WHERE w.budget_key = k;
        END IF;
        RETURN;
      END IF;
    END IF;
    s := lq_bucket_sums(jsonb_build_array(p_budget || '{"i": 0, "first": 0}'));
    tokens := 0;
    micros := 0;
    FOR i IN 1 .. n LOOP
      tokens := tokens + s.tokens[i];
      micros := micros + s.micros[i];
      IF oldest IS NULL AND (s.tokens[i] > 0 OR s.micros[i] > 0) THEN
        oldest := first + (i - 1) * step;
      END IF;
    END LOOP;
    cur_tokens := s.tokens[n];
    cur_micros := s.micros[n];
    IF n > 1 AND p_write THEN
      INSERT INTO window_totals (budget_key, bucket_start, tokens, micros, oldest_used) VALUES (k, newest, tokens, micros, oldest)
      ON CONFLICT (budget_key) DO UPDATE SET bucket_start = excluded.bucket_start, tokens = excluded.tokens,
        micros = excluded.micros, oldest_used = excluded.oldest_used
      WHERE window_totals.bucket_start <= excluded.bucket_start;
    END IF;
  END $fn$;

  -- A settle of (added_t, added_m) into the budget's newest bucket at the caller's now, which
  -- lq_window_sums just read (cur_*). The running total takes it too when the bucket is in the
  -- total's window (an instance whose clock is behind may settle into an older bucket of it).
  CREATE FUNCTION lq_count_settle(p_budget jsonb, cur_t bigint, cur_m bigint, added_t bigint, added_m bigint) RETURNS void
    LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    k text := p_budget->>'key';
    n int := (p_budget->>'count')::int;
    step bigint := (p_budget->>'step')::bigint;
    last int := n - 1;
    newest bigint := (p_budget->>'start')::bigint + last * step;
  BEGIN
    -- The counter normally exists (lq_window_sums read it) and is added to; one deleted meanwhile
    -- (retired by an instance whose clock is ahead) is written again whole.
    INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
    VALUES (k, newest, (p_budget->>'end')::bigint + last * step, (p_budget->>'retires')::bigint + last * step, cur_t + added_t, cur_m + added_m)
    ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = usage_counters.tokens + added_t, micros = usage_counters.micros + added_m;
    IF n > 1 THEN
      UPDATE window_totals w SET tokens = w.tokens + added_t, micros = w.micros + added_m,
        oldest_used = CASE WHEN added_t > 0 OR added_m > 0 THEN LEAST(COALESCE(w.oldest_used, newest), newest) ELSE w.oldest_used END
      WHERE w.budget_key = k AND newest <= w.bucket_start AND newest > w.bucket_start - n * step;
    END IF;
  END $fn$;

  -- The budget states without a lock (GET /quota): the last committed state, the totals read but
  -- never written (a settle may be adding to them).
  CREATE FUNCTION lq_usage_totals(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    w record;
  BEGIN
    IF lq_fingerprint(ARRAY(SELECT jsonb_array_elements_text(p->'scopes'))) IS DISTINCT FROM p->>'fingerprint' THEN
      RETURN '{"stale": true}';
    END IF;
    -- lq_batch_windows reads the windows in key order, as a batch does: a counter this read has to
    -- store (lq_bucket_sums) is then never one a batch waits for while this waits for one of its.
    w := lq_batch_windows(jsonb_build_array(jsonb_build_object('budgets', p->'budgets')), false);
    RETURN jsonb_build_object(
      'used', (SELECT COALESCE(jsonb_agg(jsonb_build_array(w.tokens[k], w.micros[k], w.oldest[k]) ORDER BY b.n), '[]')
               FROM jsonb_array_elements(p->'budgets') WITH ORDINALITY AS b(value, n)
               CROSS JOIN LATERAL array_position(w.keys, (b.value->>'key') || '@' || (b.value->>'start')) AS k),
      'reserved', (SELECT COALESCE(jsonb_agg(jsonb_build_array(COALESCE(br.tokens, 0), COALESCE(br.micros, 0)) ORDER BY b.n), '[]')
                   FROM jsonb_array_elements(p->'budgets') WITH ORDINALITY AS b(value, n)
                   LEFT JOIN budget_reservations br ON br.budget_key = b.value->>'key'));
  END $fn$;

  -- quota/admission.ts admit(), as lq_admit (migration 6) decides it, step for step, walking the
  -- budgets by index instead of through a query: called once per item of a batch, it runs no
  -- statement of its own. PostgresStore still checks every decision against admit().
  CREATE FUNCTION lq_admit_each(p_budgets jsonb, used_t bigint[], used_m bigint[], res_t bigint[], res_m bigint[], p_quote jsonb,
    OUT ok boolean, OUT blocking int, OUT tokens bigint, OUT micros bigint, OUT output_tokens bigint) LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    b jsonb;
    i int;
    on_limit text;
    limit_t bigint;
    limit_m bigint;
    q_tokens float8 := (p_quote->>'tokens')::float8;
    q_micros float8 := (p_quote->>'micros')::float8;
    want float8 := COALESCE((p_quote->>'want')::float8, 0);
    least_useful float8 := COALESCE((p_quote->>'min')::float8, 0);
    price float8 := COALESCE((p_quote->>'price')::float8, 0);
    ceiling_scale float8 := (p_quote->>'ceiling')::float8;
    free boolean := COALESCE((p_quote->>'free')::boolean, false);
    scale float8;
    room float8;
    micros_room float8;
    tightest int := -1;
    tightest_room float8 := 'Infinity';
    downgrade int := -1;
    granted float8;
  BEGIN
    FOR k IN 0 .. jsonb_array_length(p_budgets) - 1 LOOP
      b := p_budgets->k;
      i := (b->>'i')::int;
      on_limit := b->>'onLimit';
      limit_t := (b->>'limitTokens')::bigint;
      limit_m := (b->>'limitMicros')::bigint;
      room := 'Infinity';
      IF on_limit <> 'alert-only' THEN
        scale := CASE WHEN on_limit = 'downgrade' AND ceiling_scale IS NOT NULL THEN ceiling_scale ELSE 1 END;
        IF limit_t IS NOT NULL THEN
          room := floor(limit_t::float8 * scale) - used_t[i + 1] - res_t[i + 1] - q_tokens;
        END IF;
        IF limit_m IS NOT NULL AND NOT free THEN
          micros_room := floor(limit_m::float8 * scale) - used_m[i + 1] - res_m[i + 1] - q_micros;
          room := LEAST(room, CASE WHEN micros_room < 0 THEN -1 WHEN price > 0 THEN floor(micros_room * 1000000 / price) ELSE 'Infinity' END);
        END IF;
      END IF;
      IF room < tightest_room THEN
        tightest_room := room;
        tightest := i;
      END IF;
      IF downgrade < 0 AND (on_limit = 'whole' OR (on_limit = 'downgrade' AND ceiling_scale IS NULL)) AND room < want THEN
        downgrade := i;
      END IF;
    END LOOP;
    IF tightest_room < least_useful OR tightest_room < 0 THEN
      ok := false; blocking := tightest; RETURN;
    END IF;
    IF downgrade >= 0 THEN
      ok := false; blocking := downgrade; RETURN;
    END IF;
    granted := LEAST(want, tightest_room);
    ok := true;
    tokens := q_tokens + granted;
    micros := q_micros + ceil(granted * price / 1000000);
    output_tokens := granted;
  END $fn$;

  -- lq_alerts_due (migration 2), the same arithmetic, walking the budgets and thresholds by index.
  CREATE FUNCTION lq_alerts_due_each(p_budgets jsonb, used_t bigint[], used_m bigint[], added_t bigint, added_m bigint, p_now bigint)
    RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    b jsonb;
    i int;
    thresholds jsonb;
    lim bigint;
    before bigint;
    after bigint;
    elapsed float8;
  BEGIN
    FOR k IN 0 .. jsonb_array_length(p_budgets) - 1 LOOP
      b := p_budgets->k;
      i := (b->>'i')::int;
      thresholds := b->'thresholds';
      FOR unit IN 1 .. 2 LOOP
        IF unit = 1 THEN
          lim := (b->>'limitTokens')::bigint;
          before := used_t[i + 1];
          after := used_t[i + 1] + added_t;
        ELSE
          lim := (b->>'limitMicros')::bigint;
          before := used_m[i + 1];
          after := used_m[i + 1] + added_m;
        END IF;
        CONTINUE WHEN lim IS NULL;
        IF after > before AND jsonb_array_length(thresholds) > 0 THEN
          IF lim <= 0 THEN
            IF before <= 0 THEN RETURN true; END IF;
          ELSE
            FOR j IN 0 .. jsonb_array_length(thresholds) - 1 LOOP
              IF before * 100 < (thresholds->>j)::numeric * lim AND (thresholds->>j)::numeric * lim <= after * 100 THEN
                RETURN true;
              END IF;
            END LOOP;
          END IF;
        END IF;
        IF (b->>'projectable')::boolean AND b->>'end' IS NOT NULL THEN
          elapsed := p_now - (b->>'start')::bigint;
          IF elapsed >= 3600000 AND after < lim AND NOT (after::float8 < lim::float8 * 0.25)
             AND p_now + ceil(((lim - after)::float8 * elapsed) / after::float8) < (b->>'end')::bigint THEN
            RETURN true;
          END IF;
        END IF;
      END LOOP;
    END LOOP;
    RETURN false;
  END $fn$;

  -- The fingerprints of every scope set of a batch's items (p_items: [{scopes}]), in one statement.
  -- (This and lq_batch_windows are PL/pgSQL for their plans to be kept: a SQL function's statement
  -- is planned again at every call, which cost more than running it.)
  CREATE FUNCTION lq_batch_fingerprints(p_items jsonb, OUT sets text[], OUT fingerprints text[]) LANGUAGE plpgsql AS $fn$
  BEGIN
    SELECT COALESCE(array_agg(s.k), '{}'), COALESCE(array_agg(lq_fingerprint(ARRAY(SELECT jsonb_array_elements_text(s.j)))), '{}')
    INTO sets, fingerprints
    FROM (SELECT DISTINCT it->>'scopes' AS k, it->'scopes' AS j FROM jsonb_array_elements(p_items) AS it) s;
  END $fn$;

  -- Every budget window of a batch's items (p_items: [{budgets}]), each once (by key and first
  -- bucket), with lq_window_sums' answer, its newest bucket and the span of its buckets: in one
  -- statement, in key order.
  CREATE FUNCTION lq_batch_windows(p_items jsonb, p_write boolean, OUT keys text[], OUT budget_keys text[], OUT args jsonb[],
    OUT tokens bigint[], OUT micros bigint[], OUT oldest bigint[], OUT cur_tokens bigint[], OUT cur_micros bigint[],
    OUT newest bigint[], OUT span bigint[]) LANGUAGE plpgsql AS $fn$
  BEGIN
    SELECT COALESCE(array_agg(w.k ORDER BY w.k), '{}'), COALESCE(array_agg(w.b->>'key' ORDER BY w.k), '{}'), COALESCE(array_agg(w.b ORDER BY w.k), '{}'),
      COALESCE(array_agg(s.tokens ORDER BY w.k), '{}'), COALESCE(array_agg(s.micros ORDER BY w.k), '{}'), COALESCE(array_agg(s.oldest ORDER BY w.k), '{}'),
      COALESCE(array_agg(s.cur_tokens ORDER BY w.k), '{}'), COALESCE(array_agg(s.cur_micros ORDER BY w.k), '{}'),
      COALESCE(array_agg((w.b->>'start')::bigint + ((w.b->>'count')::bigint - 1) * (w.b->>'step')::bigint ORDER BY w.k), '{}'),
      COALESCE(array_agg((w.b->>'count')::bigint * (w.b->>'step')::bigint ORDER BY w.k), '{}')
    INTO keys, budget_keys, args, tokens, micros, oldest, cur_tokens, cur_micros, newest, span
    FROM (SELECT DISTINCT ON (x.k) x.k, x.b
          FROM (SELECT (bud->>'key') || '@' || (bud->>'start') AS k, bud AS b
                FROM jsonb_array_elements(p_items) AS it CROSS JOIN LATERAL jsonb_array_elements(it->'budgets') AS bud) x
          ORDER BY x.k) w
    CROSS JOIN LATERAL lq_window_sums(w.b, p_write) s;
  END $fn$;

  -- Reservations and lease extensions in arrival order, under the locks of all their scopes.
  -- p: {scopes (the union, in text order), items: [...]}, each item {op: "reserve" | "extend",
  -- scopes, fingerprint, budgets, quote, ...} with lq_reserve's fields (hold, rates) or
  -- lq_extend's (holdId, subject, expiresAt, now, delivered). Answers one object per item, in order.
  -- The fingerprints, each budget window's usage and each budget's reservations are read for the
  -- whole batch first, a statement each, and carried from item to item: settles wait for the locks
  -- this holds, and what each admitted item holds is added for the items after it. The holds'
  -- budget rows are written together at the end.
  CREATE FUNCTION lq_meter_batch(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    items jsonb := p->'items';
    item jsonb;
    bs jsonb;
    b jsonb;
    answers jsonb := '[]';
    fp record;
    w record;
    r_keys text[];
    r_t bigint[];
    r_m bigint[];
    pos int;
    rpos int;
    mine int[];
    ut bigint[];
    um bigint[];
    rt bigint[];
    rm bigint[];
    used jsonb;
    reserved jsonb;
    d record;
    h jsonb;
    rates jsonb;
    already boolean;
    checks jsonb;
    limited jsonb;
    before holds;
    grown holds;
    held_id text;
    add_t bigint;
    add_m bigint;
    -- The rows of hold_budgets to write: hold, budget, tokens, micros.
    hb_holds text[] := '{}';
    hb_keys text[] := '{}';
    hb_t bigint[] := '{}';
    hb_m bigint[] := '{}';
  BEGIN
    -- Holds only: a database crash may lose the last ones, as it loses the requests they hold for.
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM lq_lock_scopes(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    fp := lq_batch_fingerprints(items);
    w := lq_batch_windows(items, true);
    SELECT COALESCE(array_agg(x.k), '{}'), COALESCE(array_agg(COALESCE(h.tokens, 0)), '{}'), COALESCE(array_agg(COALESCE(h.micros, 0)), '{}')
    INTO r_keys, r_t, r_m
    FROM (SELECT DISTINCT bud->>'key' AS k FROM jsonb_array_elements(items) AS it CROSS JOIN LATERAL jsonb_array_elements(it->'budgets') AS bud) x
    LEFT JOIN budget_reservations h ON h.budget_key = x.k;

    FOR n IN 0 .. jsonb_array_length(items) - 1 LOOP
      item := items->n;
      IF fp.fingerprints[array_position(fp.sets, item->>'scopes')] IS DISTINCT FROM item->>'fingerprint' THEN
        answers := answers || '[{"stale": true}]'::jsonb;
        CONTINUE;
      END IF;
      IF item->>'op' = 'extend' THEN
        SELECT * INTO before FROM holds WHERE id = item->>'holdId';
        IF NOT FOUND THEN
          answers := answers || '[{"unknown": true}]'::jsonb;
          CONTINUE;
        END IF;
        -- The caller locked the scopes of the subject it believes the hold has: it must be this one.
        IF before.user_id IS DISTINCT FROM item->'subject'->>'user' OR before.project_id IS DISTINCT FROM item->'subject'->>'project'
           OR before.key_id IS DISTINCT FROM item->'subject'->>'key' THEN
          answers := answers || jsonb_build_array(jsonb_build_object('subject',
            jsonb_build_object('user', before.user_id, 'project', before.project_id, 'key', before.key_id)));
          CONTINUE;
        END IF;
      END IF;

      bs := item->'budgets';
      mine := '{}'; ut := '{}'; um := '{}'; rt := '{}'; rm := '{}'; used := '[]'; reserved := '[]';
      FOR k IN 0 .. jsonb_array_length(bs) - 1 LOOP
        b := bs->k;
        pos := array_position(w.keys, (b->>'key') || '@' || (b->>'start'));
        rpos := array_position(r_keys, b->>'key');
        IF NOT rpos = ANY(mine) THEN
          mine := mine || rpos;
        END IF;
        ut := ut || w.tokens[pos];
        um := um || w.micros[pos];
        rt := rt || r_t[rpos];
        rm := rm || r_m[rpos];
        used := used || jsonb_build_array(jsonb_build_array(w.tokens[pos], w.micros[pos], w.oldest[pos]));
        reserved := reserved || jsonb_build_array(jsonb_build_array(r_t[rpos], r_m[rpos]));
      END LOOP;
      d := lq_admit_each(bs, ut, um, rt, rm, item->'quote');

      IF item->>'op' = 'extend' THEN
        grown := NULL;
        held_id := item->>'holdId';
        add_t := (item->'quote'->>'tokens')::bigint;
        add_m := (item->'quote'->>'micros')::bigint;
        IF d.ok THEN
          -- Released or expired while this waited for the lock: nothing to grow.
          UPDATE holds SET tokens = tokens + add_t, micros = micros + add_m, output_tokens = output_tokens + add_t,
            expires_at = (item->>'expiresAt')::bigint,
            delivered_tokens = GREATEST(delivered_tokens, COALESCE((item->>'delivered')::bigint, delivered_tokens)),
            updated_at = (item->>'now')::bigint
          WHERE id = held_id RETURNING * INTO grown;
          IF NOT FOUND THEN
            answers := answers || '[{"unknown": true}]'::jsonb;
            CONTINUE;
          END IF;
        END IF;
        answers := answers || jsonb_build_array(jsonb_build_object('used', used, 'reserved', reserved, 'ok', d.ok,
          'blocking', d.blocking, 'granted', jsonb_build_array(d.tokens, d.micros, d.output_tokens), 'hold', to_jsonb(grown)));
      ELSE
        h := item->'hold';
        held_id := h->>'id';
        rates := item->'rates';
        already := COALESCE((rates->>'alreadyCounted')::boolean, false);
        checks := NULL;
        IF rates IS NOT NULL THEN
          checks := lq_rate_checks(rates);
          limited := lq_rate_decide(checks, (rates->>'tokens')::bigint, (rates->>'now')::bigint, already);
          IF limited IS NOT NULL THEN
            answers := answers || jsonb_build_array(jsonb_build_object('used', used, 'reserved', reserved, 'ok', false,
              'rates', checks, 'rateLimited', limited));
            CONTINUE;
          END IF;
        END IF;
        IF d.ok THEN
          INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
          VALUES (held_id, h->>'instance', h->>'user', h->>'project', h->>'key', d.tokens, d.micros, d.output_tokens,
            (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint, h->>'pending', (h->>'createdAt')::bigint)
          ON CONFLICT (id) DO NOTHING;
          IF NOT FOUND THEN
            answers := answers || '[{"exists": true}]'::jsonb;
            CONTINUE;
          END IF;
          IF rates IS NOT NULL AND NOT already THEN
            PERFORM lq_rate_count(checks, (rates->>'tokens')::bigint, (rates->>'now')::bigint);
          END IF;
          add_t := d.tokens;
          add_m := d.micros;
        END IF;
        answers := answers || jsonb_build_array(jsonb_build_object('used', used, 'reserved', reserved, 'ok', d.ok,
          'blocking', d.blocking, 'granted', jsonb_build_array(d.tokens, d.micros, d.output_tokens))
          || CASE WHEN checks IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('rates', checks) END);
      END IF;

      -- What this item now holds is held for the items after it, and written with the others.
      IF d.ok THEN
        FOREACH rpos IN ARRAY mine LOOP
          r_t[rpos] := r_t[rpos] + add_t;
          r_m[rpos] := r_m[rpos] + add_m;
          hb_holds := hb_holds || held_id;
          hb_keys := hb_keys || r_keys[rpos];
          hb_t := hb_t || add_t;
          hb_m := hb_m || add_m;
        END LOOP;
      END IF;
    END LOOP;

    -- A budget created while a stream ran joins its hold; an extension adds to the rows it has. The
    -- reservations these rows change are locked first, in key order (the insert's triggers would
    -- take the extended ones' before the new ones').
    PERFORM 1 FROM budget_reservations br WHERE br.budget_key = ANY(hb_keys) ORDER BY br.budget_key FOR UPDATE;
    INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
    SELECT x.hold_id, x.budget_key, SUM(x.t), SUM(x.m) FROM unnest(hb_holds, hb_keys, hb_t, hb_m) AS x(hold_id, budget_key, t, m)
    GROUP BY x.hold_id, x.budget_key
    ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = hold_budgets.tokens + excluded.tokens, micros = hold_budgets.micros + excluded.micros;
    RETURN answers;
  END $fn$;

  -- Settlements, durable at commit, those that arrived together in one call (group commit), in
  -- the shape of lq_meter_batch: the locks of all their scopes (p.scopes, in text order) taken
  -- once; the fingerprints, the entries already settled and each budget window's usage read for
  -- the whole batch first, and the usage carried from settle to settle, so each is decided on what
  -- the ones before it left; each counter and running total written once at the end. Each settle
  -- is lq_settle_one's (migration 8): its entry (unique per request: a second settle finds the
  -- first and only clears the hold), and, when an alert may fire and p.inTransaction is false,
  -- nothing written and {"alerts": true} answered, for the caller to settle it again alone in a
  -- transaction that records the alerts before it commits. p: {scopes, inTransaction, settles:
  -- [{scopes, fingerprint, budgets, entry, overrun?}]}; answers one object per settle, in order.
  CREATE FUNCTION lq_settle_batch(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    in_tx boolean := (p->>'inTransaction')::boolean;
    settles jsonb := p->'settles';
    one jsonb;
    e jsonb;
    bs jsonb;
    b jsonb;
    answers jsonb := '[]';
    fp record;
    w record;
    settled_before text[];
    -- What the batch adds to each window (by its place in w).
    w_at bigint[];
    w_am bigint[];
    pos int;
    q int;
    mine int[];
    ut bigint[];
    um bigint[];
    used jsonb;
    added_t bigint;
    added_m bigint;
    entry ledger;
    settled text[] := '{}';
  BEGIN
    PERFORM lq_lock_scopes(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    fp := lq_batch_fingerprints(settles);
    w := lq_batch_windows(settles, true);
    w_at := array_fill(0::bigint, ARRAY[cardinality(w.keys)]);
    w_am := w_at;
    SELECT COALESCE(array_agg(l.request_id), '{}') INTO settled_before FROM ledger l
    WHERE l.request_id = ANY(ARRAY(SELECT s->'entry'->>'request_id' FROM jsonb_array_elements(settles) AS s));

    FOR n IN 0 .. jsonb_array_length(settles) - 1 LOOP
      one := settles->n;
      IF fp.fingerprints[array_position(fp.sets, one->>'scopes')] IS DISTINCT FROM one->>'fingerprint' THEN
        answers := answers || '[{"stale": true}]'::jsonb;
        CONTINUE;
      END IF;
      e := one->'entry';
      IF (e->>'request_id') = ANY(settled_before) THEN
        SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
        settled := settled || (e->>'request_id');
        answers := answers || jsonb_build_array(jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry)));
        CONTINUE;
      END IF;
      added_t := (e->>'input_tokens')::bigint + (e->>'output_tokens')::bigint;
      added_m := (e->>'cost_micros')::bigint;
      bs := one->'budgets';
      mine := '{}'; ut := '{}'; um := '{}'; used := '[]';
      FOR k IN 0 .. jsonb_array_length(bs) - 1 LOOP
        b := bs->k;
        pos := array_position(w.keys, (b->>'key') || '@' || (b->>'start'));
        mine := mine || pos;
        ut := ut || w.tokens[pos];
        um := um || w.micros[pos];
        used := used || jsonb_build_array(jsonb_build_array(w.tokens[pos], w.micros[pos], w.oldest[pos]));
      END LOOP;
      -- An overrun fires its alert once per model and hour: only the first settle of the hour to
      -- carry one needs the transaction that records it (alert-planning.ts overrunAlertRow).
      IF NOT in_tx AND (
           ((added_t > 0 OR added_m > 0) AND lq_alerts_due_each(bs, ut, um, added_t, added_m, (e->>'at')::bigint))
           OR (one->'overrun' IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.budget_key = one->'overrun'->>'key'
                                 AND a.window_start = (one->'overrun'->>'windowStart')::bigint AND a.kind = 'overrun' AND a.threshold = 0))) THEN
        answers := answers || '[{"alerts": true}]'::jsonb;
        CONTINUE;
      END IF;
      INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
        reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, overrun_tokens, cache_write_tokens,
        cache_write_1h_tokens, upstream, saved_tokens, saved_micros)
      SELECT request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
        reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, COALESCE(overrun_tokens, 0),
        COALESCE(cache_write_tokens, 0), COALESCE(cache_write_1h_tokens, 0), upstream, COALESCE(saved_tokens, 0), COALESCE(saved_micros, 0)
      FROM jsonb_populate_record(NULL::ledger, e)
      ON CONFLICT (request_id) DO NOTHING
      RETURNING * INTO entry;
      IF NOT FOUND THEN
        -- Settled meanwhile under another subject's locks (or earlier in this batch): the first settle stands.
        SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
        settled := settled || (e->>'request_id');
        answers := answers || jsonb_build_array(jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry)));
        CONTINUE;
      END IF;
      -- Carried on to the settles after it, and written once at the end.
      FOREACH pos IN ARRAY mine LOOP
        w_at[pos] := w_at[pos] + added_t;
        w_am[pos] := w_am[pos] + added_m;
        -- Every window of the budget in this batch that holds this bucket counts it (two, when
        -- clocks straddle a bucket's edge).
        FOREACH q IN ARRAY array_positions(w.budget_keys, w.budget_keys[pos]) LOOP
          CONTINUE WHEN NOT (w.newest[pos] <= w.newest[q] AND w.newest[pos] > w.newest[q] - w.span[q]) AND q <> pos;
          w.tokens[q] := w.tokens[q] + added_t;
          w.micros[q] := w.micros[q] + added_m;
          IF added_t > 0 OR added_m > 0 THEN
            w.oldest[q] := LEAST(COALESCE(w.oldest[q], w.newest[pos]), w.newest[pos]);
          END IF;
        END LOOP;
      END LOOP;
      settled := settled || (e->>'request_id');
      answers := answers || jsonb_build_array(jsonb_build_object('entry', to_jsonb(entry), 'used', used));
    END LOOP;
    FOR pos IN 1 .. cardinality(w.keys) LOOP
      CONTINUE WHEN w_at[pos] = 0 AND w_am[pos] = 0;
      PERFORM lq_count_settle(w.args[pos], w.cur_tokens[pos], w.cur_micros[pos], w_at[pos], w_am[pos]);
    END LOOP;
    -- The holds (of duplicates too) are locked first, in id order, as every path that deletes holds
    -- locks them; then their budget rows in one statement, so their reservations change once each.
    PERFORM 1 FROM holds h WHERE h.id = ANY(settled) ORDER BY h.id FOR UPDATE;
    DELETE FROM hold_budgets WHERE hold_id = ANY(settled);
    DELETE FROM holds WHERE id = ANY(settled);
    RETURN answers;
  END $fn$;
`;
