/**
 * Migration 12: the batch functions of migration 11 collect their answers in an array.
 *
 * Migration 11 appended each item's answer to a jsonb array (`answers := answers || …`), which
 * copies the whole array every time: a batch of n items did O(n²) work, the ledger entry of every
 * settle before it copied again with each settle. Measured on a replayed batch of 32
 * reserve+settle pairs (`bench/postgres.bench.ts` prints the CPU a pair takes), a fifth of the
 * backend's CPU per pair went there. PL/pgSQL appends to an array variable in place, so the
 * answers are now a jsonb[] turned into one jsonb array on return. Nothing else changes: the two
 * functions are migration 11's, statement for statement.
 *
 * Released with migration 12: never edited, a change is a new migration.
 */
export const MIGRATION_12_SQL = `
  -- Reservations and lease extensions in arrival order, under the locks of all their scopes.
  -- p: {scopes (the union, in text order), items: [...]}, each item {op: "reserve" | "extend",
  -- scopes, fingerprint, budgets, quote, ...} with lq_reserve's fields (hold, rates) or
  -- lq_extend's (holdId, subject, expiresAt, now, delivered). Answers one object per item, in order.
  -- The fingerprints, each budget window's usage and each budget's reservations are read for the
  -- whole batch first, a statement each, and carried from item to item: settles wait for the locks
  -- this holds, and what each admitted item holds is added for the items after it. The holds'
  -- budget rows are written together at the end.
  CREATE OR REPLACE FUNCTION lq_meter_batch(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    items jsonb := p->'items';
    item jsonb;
    bs jsonb;
    b jsonb;
    answers jsonb[] := '{}';
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
        answers := array_append(answers, '{"stale": true}'::jsonb);
        CONTINUE;
      END IF;
      IF item->>'op' = 'extend' THEN
        SELECT * INTO before FROM holds WHERE id = item->>'holdId';
        IF NOT FOUND THEN
          answers := array_append(answers, '{"unknown": true}'::jsonb);
          CONTINUE;
        END IF;
        -- The caller locked the scopes of the subject it believes the hold has: it must be this one.
        IF before.user_id IS DISTINCT FROM item->'subject'->>'user' OR before.project_id IS DISTINCT FROM item->'subject'->>'project'
           OR before.key_id IS DISTINCT FROM item->'subject'->>'key' THEN
          answers := array_append(answers, jsonb_build_object('subject',
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
            answers := array_append(answers, '{"unknown": true}'::jsonb);
            CONTINUE;
          END IF;
        END IF;
        answers := array_append(answers, jsonb_build_object('used', used, 'reserved', reserved, 'ok', d.ok,
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
            answers := array_append(answers, jsonb_build_object('used', used, 'reserved', reserved, 'ok', false,
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
            answers := array_append(answers, '{"exists": true}'::jsonb);
            CONTINUE;
          END IF;
          IF rates IS NOT NULL AND NOT already THEN
            PERFORM lq_rate_count(checks, (rates->>'tokens')::bigint, (rates->>'now')::bigint);
          END IF;
          add_t := d.tokens;
          add_m := d.micros;
        END IF;
        answers := array_append(answers, jsonb_build_object('used', used, 'reserved', reserved, 'ok', d.ok,
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
    RETURN to_jsonb(answers);
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
  CREATE OR REPLACE FUNCTION lq_settle_batch(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    in_tx boolean := (p->>'inTransaction')::boolean;
    settles jsonb := p->'settles';
    one jsonb;
    e jsonb;
    bs jsonb;
    b jsonb;
    answers jsonb[] := '{}';
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
        answers := array_append(answers, '{"stale": true}'::jsonb);
        CONTINUE;
      END IF;
      e := one->'entry';
      IF (e->>'request_id') = ANY(settled_before) THEN
        SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
        settled := settled || (e->>'request_id');
        answers := array_append(answers, jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry)));
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
        answers := array_append(answers, '{"alerts": true}'::jsonb);
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
        answers := array_append(answers, jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry)));
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
      answers := array_append(answers, jsonb_build_object('entry', to_jsonb(entry), 'used', used));
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
    RETURN to_jsonb(answers);
  END $fn$;
`;
