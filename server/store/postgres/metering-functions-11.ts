/**
 * Migration 11: counters that cost O(1), and admission in batches.
 *
 * - `window_totals` keeps each rolling budget's window total (and the start of its oldest bucket
 *   with usage, for the reset time) as of the window's newest bucket. It is summed from the 60
 *   buckets only when the window has moved on since (once per bucket period, under the scope locks);
 *   every settle into the newest bucket adds to it, as it adds to the bucket's counter. Reading a
 *   budget's usage is thus one or two index probes (lq_window_sums), not 60.
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
  -- settle adds to). p_budget is one budget argument of metering-args.ts. A calendar or total
  -- budget has one bucket: one probe of its counter. A rolling one: its running total when that is
  -- of this window, else the 60 buckets summed (lq_bucket_sums, which stores a counter for every
  -- bucket it had to count from the ledger), written back when p_write (the caller holds the
  -- scope's lock, so no settle adds to it meanwhile), never for an older window than it holds.
  CREATE FUNCTION lq_window_sums(p_budget jsonb, p_write boolean,
    OUT tokens bigint, OUT micros bigint, OUT oldest bigint, OUT cur_tokens bigint, OUT cur_micros bigint)
    LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    k text := p_budget->>'key';
    n int := (p_budget->>'count')::int;
    step bigint := (p_budget->>'step')::bigint;
    newest bigint := (p_budget->>'start')::bigint + (n - 1) * step;
    c record;
    tot window_totals;
    s record;
  BEGIN
    SELECT u.tokens, u.micros INTO c FROM usage_counters u WHERE u.budget_key = k AND u.bucket_start = newest;
    IF FOUND THEN
      cur_tokens := c.tokens;
      cur_micros := c.micros;
      IF n = 1 THEN
        tokens := c.tokens;
        micros := c.micros;
        RETURN;
      END IF;
      SELECT * INTO tot FROM window_totals w WHERE w.budget_key = k;
      IF FOUND AND tot.bucket_start = newest THEN
        tokens := tot.tokens;
        micros := tot.micros;
        oldest := tot.oldest_used;
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
        oldest := (p_budget->>'start')::bigint + (i - 1) * step;
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
    b jsonb;
    s record;
    used jsonb := '[]';
    reserved jsonb := '[]';
    r record;
  BEGIN
    IF lq_fingerprint(ARRAY(SELECT jsonb_array_elements_text(p->'scopes'))) IS DISTINCT FROM p->>'fingerprint' THEN
      RETURN '{"stale": true}';
    END IF;
    FOR b IN SELECT value FROM jsonb_array_elements(p->'budgets') LOOP
      s := lq_window_sums(b, false);
      used := used || jsonb_build_array(jsonb_build_array(s.tokens, s.micros, s.oldest));
      SELECT COALESCE(SUM(hb.tokens), 0)::bigint AS t, COALESCE(SUM(hb.micros), 0)::bigint AS m INTO r FROM hold_budgets hb WHERE hb.budget_key = b->>'key';
      reserved := reserved || jsonb_build_array(jsonb_build_array(r.t, r.m));
    END LOOP;
    RETURN jsonb_build_object('used', used, 'reserved', reserved);
  END $fn$;

  -- Reservations and lease extensions in arrival order, under the locks of all their scopes.
  -- p: {scopes (the union, in text order), items: [...]}, each item {op: "reserve" | "extend",
  -- scopes, fingerprint, budgets, quote, ...} with lq_reserve's fields (hold, rates) or
  -- lq_extend's (holdId, subject, expiresAt, now, delivered). Answers one object per item, in order.
  -- A budget's usage and reservations are read at its first item and carried on from there: settles
  -- wait for the locks this holds, and every hold this batch adds is added to what it carries.
  CREATE FUNCTION lq_meter_batch(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    item jsonb;
    b jsonb;
    answers jsonb := '[]';
    -- Fingerprints read, by scope set.
    fp_sets text[] := '{}';
    fp_values text[] := '{}';
    -- Usage read, by budget key and window (its first bucket): tokens, micros, oldest used.
    w_keys text[] := '{}';
    w_t bigint[] := '{}';
    w_m bigint[] := '{}';
    w_o bigint[] := '{}';
    -- Reservations read, by budget key, with this batch's holds added.
    r_keys text[] := '{}';
    r_t bigint[] := '{}';
    r_m bigint[] := '{}';
    pos int;
    fp text;
    s record;
    r record;
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
    add_t bigint;
    add_m bigint;
    seen text[];
  BEGIN
    -- Holds only: a database crash may lose the last ones, as it loses the requests they hold for.
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM lq_lock_scopes(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    FOR item IN SELECT value FROM jsonb_array_elements(p->'items') LOOP
      pos := array_position(fp_sets, item->>'scopes');
      IF pos IS NULL THEN
        fp := lq_fingerprint(ARRAY(SELECT jsonb_array_elements_text(item->'scopes')));
        fp_sets := fp_sets || (item->>'scopes');
        fp_values := fp_values || fp;
      ELSE
        fp := fp_values[pos];
      END IF;
      IF fp IS DISTINCT FROM item->>'fingerprint' THEN
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

      ut := '{}'; um := '{}'; rt := '{}'; rm := '{}'; used := '[]'; reserved := '[]';
      FOR b IN SELECT value FROM jsonb_array_elements(item->'budgets') LOOP
        pos := array_position(w_keys, (b->>'key') || '@' || (b->>'start'));
        IF pos IS NULL THEN
          s := lq_window_sums(b, true);
          w_keys := w_keys || ((b->>'key') || '@' || (b->>'start'));
          w_t := w_t || s.tokens;
          w_m := w_m || s.micros;
          w_o := w_o || s.oldest;
          pos := array_length(w_keys, 1);
        END IF;
        ut := ut || w_t[pos];
        um := um || w_m[pos];
        used := used || jsonb_build_array(jsonb_build_array(w_t[pos], w_m[pos], w_o[pos]));
        pos := array_position(r_keys, b->>'key');
        IF pos IS NULL THEN
          SELECT COALESCE(SUM(hb.tokens), 0)::bigint AS t, COALESCE(SUM(hb.micros), 0)::bigint AS m INTO r
          FROM hold_budgets hb WHERE hb.budget_key = b->>'key';
          r_keys := r_keys || (b->>'key');
          r_t := r_t || r.t;
          r_m := r_m || r.m;
          pos := array_length(r_keys, 1);
        END IF;
        rt := rt || r_t[pos];
        rm := rm || r_m[pos];
        reserved := reserved || jsonb_build_array(jsonb_build_array(r_t[pos], r_m[pos]));
      END LOOP;
      d := lq_admit(item->'budgets', ut, um, rt, rm, item->'quote');

      IF item->>'op' = 'extend' THEN
        grown := NULL;
        add_t := (item->'quote'->>'tokens')::bigint;
        add_m := (item->'quote'->>'micros')::bigint;
        IF d.ok THEN
          -- Released or expired while this waited for the lock: nothing to grow.
          UPDATE holds SET tokens = tokens + add_t, micros = micros + add_m, output_tokens = output_tokens + add_t,
            expires_at = (item->>'expiresAt')::bigint,
            delivered_tokens = GREATEST(delivered_tokens, COALESCE((item->>'delivered')::bigint, delivered_tokens)),
            updated_at = (item->>'now')::bigint
          WHERE id = item->>'holdId' RETURNING * INTO grown;
          IF NOT FOUND THEN
            answers := answers || '[{"unknown": true}]'::jsonb;
            CONTINUE;
          END IF;
          INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
          SELECT DISTINCT item->>'holdId', w.key, add_t, add_m FROM jsonb_to_recordset(item->'budgets') AS w(key text)
          ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = hold_budgets.tokens + excluded.tokens, micros = hold_budgets.micros + excluded.micros;
        END IF;
        answers := answers || jsonb_build_array(jsonb_build_object('used', used, 'reserved', reserved, 'ok', d.ok,
          'blocking', d.blocking, 'granted', jsonb_build_array(d.tokens, d.micros, d.output_tokens), 'hold', to_jsonb(grown)));
      ELSE
        h := item->'hold';
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
          VALUES (h->>'id', h->>'instance', h->>'user', h->>'project', h->>'key', d.tokens, d.micros, d.output_tokens,
            (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint, h->>'pending', (h->>'createdAt')::bigint)
          ON CONFLICT (id) DO NOTHING;
          IF NOT FOUND THEN
            answers := answers || '[{"exists": true}]'::jsonb;
            CONTINUE;
          END IF;
          INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
          SELECT DISTINCT h->>'id', w.key, d.tokens, d.micros FROM jsonb_to_recordset(item->'budgets') AS w(key text);
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

      -- What this item now holds is held for the items after it.
      IF d.ok THEN
        seen := '{}';
        FOR b IN SELECT value FROM jsonb_array_elements(item->'budgets') LOOP
          CONTINUE WHEN (b->>'key') = ANY(seen);
          seen := seen || (b->>'key');
          pos := array_position(r_keys, b->>'key');
          r_t[pos] := r_t[pos] + add_t;
          r_m[pos] := r_m[pos] + add_m;
        END LOOP;
      END IF;
    END LOOP;
    RETURN answers;
  END $fn$;

  -- Settlements, durable at commit, those that arrived together in one call (group commit), in
  -- the shape of lq_meter_batch: the locks of all their scopes (p.scopes, in text order) taken
  -- once; each budget window's usage read at its first settle and carried on through the ones after
  -- it, so each is decided on what the settles before it left; each counter and running total
  -- written once for the batch. Each settle is lq_settle_one's (migration 8): its entry (unique per
  -- request: a second settle finds the first and only clears the hold), and, when an alert may
  -- fire and p.inTransaction is false, nothing written and {"alerts": true} answered, for the
  -- caller to settle it again alone in a transaction that records the alerts before it commits.
  -- p: {scopes, inTransaction, settles: [{scopes, fingerprint, budgets, entry, overrun?}]};
  -- answers one object per settle, in order.
  CREATE FUNCTION lq_settle_batch(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    in_tx boolean := (p->>'inTransaction')::boolean;
    one jsonb;
    e jsonb;
    b jsonb;
    answers jsonb := '[]';
    fp_sets text[] := '{}';
    fp_values text[] := '{}';
    fp text;
    pos int;
    -- Per budget window (key and first bucket): its argument, the usage carried, the newest
    -- bucket's own sums as read, what this batch adds to it.
    w_keys text[] := '{}';
    w_budgets text[] := '{}';
    w_args jsonb[] := '{}';
    w_t bigint[] := '{}';
    w_m bigint[] := '{}';
    w_o bigint[] := '{}';
    w_ct bigint[] := '{}';
    w_cm bigint[] := '{}';
    w_at bigint[] := '{}';
    w_am bigint[] := '{}';
    q int;
    mine int[];
    ut bigint[];
    um bigint[];
    used jsonb;
    s record;
    added_t bigint;
    added_m bigint;
    newest bigint;
    entry ledger;
    settled text[] := '{}';
  BEGIN
    PERFORM lq_lock_scopes(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    FOR one IN SELECT value FROM jsonb_array_elements(p->'settles') LOOP
      pos := array_position(fp_sets, one->>'scopes');
      IF pos IS NULL THEN
        fp := lq_fingerprint(ARRAY(SELECT jsonb_array_elements_text(one->'scopes')));
        fp_sets := fp_sets || (one->>'scopes');
        fp_values := fp_values || fp;
      ELSE
        fp := fp_values[pos];
      END IF;
      IF fp IS DISTINCT FROM one->>'fingerprint' THEN
        answers := answers || '[{"stale": true}]'::jsonb;
        CONTINUE;
      END IF;
      e := one->'entry';
      SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
      IF FOUND THEN
        DELETE FROM holds WHERE id = e->>'request_id';
        answers := answers || jsonb_build_array(jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry)));
        CONTINUE;
      END IF;
      added_t := (e->>'input_tokens')::bigint + (e->>'output_tokens')::bigint;
      added_m := (e->>'cost_micros')::bigint;
      mine := '{}'; ut := '{}'; um := '{}'; used := '[]';
      FOR b IN SELECT value FROM jsonb_array_elements(one->'budgets') LOOP
        pos := array_position(w_keys, (b->>'key') || '@' || (b->>'start'));
        IF pos IS NULL THEN
          -- Another window of this budget in the batch (a clock moved on to the next bucket): what
          -- the batch added to that one is written first, so that this one reads it.
          FOREACH q IN ARRAY array_positions(w_budgets, b->>'key') LOOP
            CONTINUE WHEN w_at[q] = 0 AND w_am[q] = 0;
            PERFORM lq_count_settle(w_args[q], w_ct[q], w_cm[q], w_at[q], w_am[q]);
            w_ct[q] := w_ct[q] + w_at[q];
            w_cm[q] := w_cm[q] + w_am[q];
            w_at[q] := 0;
            w_am[q] := 0;
          END LOOP;
          s := lq_window_sums(b, true);
          w_keys := w_keys || ((b->>'key') || '@' || (b->>'start'));
          w_budgets := w_budgets || (b->>'key');
          w_args := w_args || b;
          w_t := w_t || s.tokens;
          w_m := w_m || s.micros;
          w_o := w_o || s.oldest;
          w_ct := w_ct || s.cur_tokens;
          w_cm := w_cm || s.cur_micros;
          w_at := w_at || 0::bigint;
          w_am := w_am || 0::bigint;
          pos := array_length(w_keys, 1);
        END IF;
        mine := mine || pos;
        ut := ut || w_t[pos];
        um := um || w_m[pos];
        used := used || jsonb_build_array(jsonb_build_array(w_t[pos], w_m[pos], w_o[pos]));
      END LOOP;
      -- An overrun fires its alert once per model and hour: only the first settle of the hour to
      -- carry one needs the transaction that records it (alert-planning.ts overrunAlertRow).
      IF NOT in_tx AND (
           ((added_t > 0 OR added_m > 0) AND lq_alerts_due(one->'budgets', ut, um, added_t, added_m, (e->>'at')::bigint))
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
        -- Settled meanwhile under another subject's locks: the first settle stands.
        SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
        DELETE FROM holds WHERE id = e->>'request_id';
        answers := answers || jsonb_build_array(jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry)));
        CONTINUE;
      END IF;
      -- Carried on to the settles after it, and written once at the end.
      FOREACH pos IN ARRAY mine LOOP
        w_t[pos] := w_t[pos] + added_t;
        w_m[pos] := w_m[pos] + added_m;
        w_at[pos] := w_at[pos] + added_t;
        w_am[pos] := w_am[pos] + added_m;
        IF added_t > 0 OR added_m > 0 THEN
          newest := (w_args[pos]->>'start')::bigint + ((w_args[pos]->>'count')::bigint - 1) * (w_args[pos]->>'step')::bigint;
          w_o[pos] := LEAST(COALESCE(w_o[pos], newest), newest);
        END IF;
      END LOOP;
      settled := settled || (e->>'request_id');
      answers := answers || jsonb_build_array(jsonb_build_object('entry', to_jsonb(entry), 'used', used));
    END LOOP;
    FOR pos IN 1 .. COALESCE(array_length(w_keys, 1), 0) LOOP
      CONTINUE WHEN w_at[pos] = 0 AND w_am[pos] = 0;
      PERFORM lq_count_settle(w_args[pos], w_ct[pos], w_cm[pos], w_at[pos], w_am[pos]);
    END LOOP;
    DELETE FROM holds WHERE id = ANY(settled);
    RETURN answers;
  END $fn$;
`;
