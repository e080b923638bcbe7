/**
 * Migration 2: reserve, extend, settle and the budget states as server-side functions, so each is
 * one round trip and the scope row locks are held only while the server runs it (a fraction of a
 * millisecond), never across a round trip to Node. Released with migration 2: never edited, a
 * change is a new migration.
 *
 * Each function takes one jsonb argument that PostgresStore builds (see metering-args.ts): the
 * request's scope names in text order, the fingerprint of the stored budgets the caller resolved,
 * its budgets and the counter buckets of their windows (window arithmetic stays in TypeScript), and
 * the operation's own fields. It answers jsonb: the bucket sums and reserved sums it read under the
 * lock, so TypeScript builds the same BudgetStates as before, plus what it did. Admission is
 * decided here by lq_admit, a port of quota/admission.ts `admit()` in float8 (the same IEEE
 * arithmetic as JavaScript); the store runs `admit()` again on what came back and refuses to go on
 * if the two ever disagree.
 *
 * lq_reserve and lq_extend carry no SET clause: it would undo, on their return, the
 * transaction-local synchronous_commit = off they ask for. Those that run queries over lq_buckets
 * set jit = off: the planner cannot know a call has a few dozen buckets, estimates 100,000 rows,
 * and would spend 60 ms compiling a query that runs in 0.3 ms.
 */
export const METERING_FUNCTIONS_SQL = `
  -- Creates the scope rows the first time they are seen, then locks them in text order (the
  -- order every transaction takes them in, so none waits on another in a cycle).
  CREATE FUNCTION lq_lock_scopes(p_scopes text[]) RETURNS void LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  BEGIN
    INSERT INTO scope_locks (scope) SELECT s FROM unnest(p_scopes) AS s ORDER BY s ON CONFLICT DO NOTHING;
    PERFORM 1 FROM scope_locks WHERE scope = ANY(p_scopes) ORDER BY scope FOR UPDATE;
  END $fn$;

  -- Identity of the stored budgets of these scopes: a caller that resolved budgets under another
  -- fingerprint is told it is stale and reads them again.
  CREATE FUNCTION lq_budget_fingerprint(p_scopes text[]) RETURNS text LANGUAGE sql STABLE SET jit = off SET enable_seqscan = off AS $fn$
    SELECT COALESCE(md5(string_agg(b::text, ',' ORDER BY b.scope, b.period)), '') FROM budgets b WHERE b.scope = ANY(p_scopes)
  $fn$;

  -- The counter buckets of each budget's window, numbered i across all budgets in order. A budget
  -- (p_budgets: [{i, key, first, count, start, end, retires, step, col, id}]) sends its first
  -- bucket and the step to each next one (rolling windows are 60 equal buckets; others have one):
  -- a tenth of the bytes of listing them. The last bucket is the one at now, which a settle adds to.
  CREATE FUNCTION lq_buckets(p_budgets jsonb)
    RETURNS TABLE (i int, b int, key text, start bigint, "end" bigint, retires bigint, col text, id text, current boolean)
    LANGUAGE sql IMMUTABLE AS $fn$
    SELECT w.first + k, w.i, w.key, w.start + k * w.step, w."end" + k * w.step, w.retires + k * w.step, w.col, w.id, k = w.count - 1
    FROM jsonb_to_recordset(p_budgets) AS w(i int, key text, first int, count int, start bigint, "end" bigint, retires bigint, step bigint, col text, id text)
    CROSS JOIN LATERAL generate_series(0, w.count - 1) AS k
  $fn$;

  -- Settled usage of each bucket, in order of i. A bucket without a counter is summed from the
  -- ledger and rollup and stored as one (ON CONFLICT keeps whichever came first: every settle
  -- into it adds to the stored row).
  CREATE FUNCTION lq_bucket_sums(p_budgets jsonb, OUT tokens bigint[], OUT micros bigint[]) LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    r record;
    t bigint;
    m bigint;
  BEGIN
    -- One index probe per bucket: OFFSET 0 keeps the planner from turning this into a hash join
    -- over every counter (it cannot know how few buckets a call has).
    SELECT COALESCE(array_agg(c.tokens ORDER BY w.i), '{}'), COALESCE(array_agg(c.micros ORDER BY w.i), '{}') INTO tokens, micros
    FROM lq_buckets(p_budgets) AS w
    LEFT JOIN LATERAL (SELECT u.tokens, u.micros FROM usage_counters u WHERE u.budget_key = w.key AND u.bucket_start = w.start OFFSET 0) c ON true;
    FOR r IN SELECT * FROM lq_buckets(p_budgets) AS w WHERE tokens[w.i + 1] IS NULL LOOP
      EXECUTE format(
        'SELECT SUM(t)::bigint, SUM(m)::bigint FROM (
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS t, COALESCE(SUM(cost_micros), 0) AS m FROM ledger WHERE %1$s at >= $2 AND at < $3
           UNION ALL
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM ledger_rollup WHERE %1$s slot_at >= $2 AND slot_at < $3) AS parts',
        CASE WHEN r.col IS NULL THEN '' ELSE format('%I = $1 AND', r.col) END)
      INTO t, m USING r.id, r.start, COALESCE(r."end", 9007199254740991);
      INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
      VALUES (r.key, r.start, r."end", r.retires, t, m) ON CONFLICT DO NOTHING;
      tokens[r.i + 1] := t;
      micros[r.i + 1] := m;
    END LOOP;
  END $fn$;

  -- What live holds set aside per budget (p_budgets: [{i, key}]), in order of i.
  CREATE FUNCTION lq_reserved(p_budgets jsonb, OUT tokens bigint[], OUT micros bigint[]) LANGUAGE sql STABLE SET jit = off SET enable_seqscan = off AS $fn$
    SELECT COALESCE(array_agg(COALESCE(h.t, 0) ORDER BY w.i), '{}'), COALESCE(array_agg(COALESCE(h.m, 0) ORDER BY w.i), '{}')
    FROM jsonb_to_recordset(p_budgets) AS w(i int, key text)
    LEFT JOIN LATERAL (SELECT SUM(hb.tokens)::bigint AS t, SUM(hb.micros)::bigint AS m FROM hold_budgets hb WHERE hb.budget_key = w.key) h ON true
  $fn$;

  -- Per budget, the sum of its buckets' usage.
  CREATE FUNCTION lq_used(p_budgets jsonb, p_sums bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE SET jit = off SET enable_seqscan = off AS $fn$
    SELECT COALESCE(array_agg(x.used ORDER BY x.b), '{}') FROM (
      SELECT w.b, SUM(p_sums[w.i + 1])::bigint AS used FROM lq_buckets(p_budgets) AS w GROUP BY w.b) AS x
  $fn$;

  -- quota/admission.ts admit(), step for step, in float8 like JavaScript's numbers. p_budgets:
  -- [{i, onLimit, limitTokens, limitMicros}]; p_quote: {tokens, micros, want, min, price, ceiling}
  -- (want, min and price absent without an output allowance; ceiling absent unless downgraded).
  CREATE FUNCTION lq_admit(p_budgets jsonb, used_t bigint[], used_m bigint[], res_t bigint[], res_m bigint[], p_quote jsonb,
    OUT ok boolean, OUT blocking int, OUT tokens bigint, OUT micros bigint, OUT output_tokens bigint) LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    b record;
    q_tokens float8 := (p_quote->>'tokens')::float8;
    q_micros float8 := (p_quote->>'micros')::float8;
    want float8 := COALESCE((p_quote->>'want')::float8, 0);
    least_useful float8 := COALESCE((p_quote->>'min')::float8, 0);
    price float8 := COALESCE((p_quote->>'price')::float8, 0);
    ceiling_scale float8 := (p_quote->>'ceiling')::float8;
    scale float8;
    room float8;
    micros_room float8;
    tightest int := -1;
    tightest_room float8 := 'Infinity';
    downgrade int := -1;
    granted float8;
  BEGIN
    FOR b IN SELECT * FROM jsonb_to_recordset(p_budgets) AS x(i int, "onLimit" text, "limitTokens" bigint, "limitMicros" bigint) ORDER BY x.i LOOP
      room := 'Infinity';
      IF b."onLimit" <> 'alert-only' THEN
        scale := CASE WHEN b."onLimit" = 'downgrade' AND ceiling_scale IS NOT NULL THEN ceiling_scale ELSE 1 END;
        IF b."limitTokens" IS NOT NULL THEN
          room := floor(b."limitTokens"::float8 * scale) - used_t[b.i + 1] - res_t[b.i + 1] - q_tokens;
        END IF;
        IF b."limitMicros" IS NOT NULL THEN
          micros_room := floor(b."limitMicros"::float8 * scale) - used_m[b.i + 1] - res_m[b.i + 1] - q_micros;
          room := LEAST(room, CASE WHEN micros_room < 0 THEN -1 WHEN price > 0 THEN floor(micros_room * 1000000 / price) ELSE 'Infinity' END);
        END IF;
      END IF;
      IF room < tightest_room THEN
        tightest_room := room;
        tightest := b.i;
      END IF;
      IF downgrade < 0 AND b."onLimit" = 'downgrade' AND ceiling_scale IS NULL AND room < want THEN
        downgrade := b.i;
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

  -- The budget states without a lock (GET /quota): the last committed state.
  CREATE FUNCTION lq_usage(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    scopes text[] := ARRAY(SELECT jsonb_array_elements_text(p->'scopes'));
    sums record;
    reserved record;
  BEGIN
    IF lq_budget_fingerprint(scopes) IS DISTINCT FROM p->>'fingerprint' THEN
      RETURN '{"stale": true}';
    END IF;
    sums := lq_bucket_sums(p->'budgets');
    reserved := lq_reserved(p->'budgets');
    RETURN jsonb_build_object('tokens', sums.tokens, 'micros', sums.micros, 'reservedTokens', reserved.tokens, 'reservedMicros', reserved.micros);
  END $fn$;

  -- What lq_reserve and lq_extend share: under the scope locks (and the budgets' fingerprint
  -- checked), the states read and lq_admit's decision on p.quote. states is null when the budgets
  -- are stale, else the jsonb both answer with.
  CREATE FUNCTION lq_locked_admission(p jsonb, OUT states jsonb, OUT ok boolean, OUT blocking int, OUT tokens bigint,
    OUT micros bigint, OUT output_tokens bigint) LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    scopes text[] := ARRAY(SELECT jsonb_array_elements_text(p->'scopes'));
    sums record;
    reserved record;
    d record;
  BEGIN
    PERFORM lq_lock_scopes(scopes);
    IF lq_budget_fingerprint(scopes) IS DISTINCT FROM p->>'fingerprint' THEN
      RETURN;
    END IF;
    sums := lq_bucket_sums(p->'budgets');
    reserved := lq_reserved(p->'budgets');
    d := lq_admit(p->'budgets', lq_used(p->'budgets', sums.tokens),
      lq_used(p->'budgets', sums.micros), reserved.tokens, reserved.micros, p->'quote');
    states := jsonb_build_object('tokens', sums.tokens, 'micros', sums.micros, 'reservedTokens', reserved.tokens, 'reservedMicros', reserved.micros);
    ok := d.ok;
    blocking := d.blocking;
    tokens := d.tokens;
    micros := d.micros;
    output_tokens := d.output_tokens;
  END $fn$;

  -- A reservation: under the scope locks, the states, the decision and (when admitted) the hold
  -- with what it sets aside per budget. p.hold: {id, instance, user, project, key, createdAt, expiresAt}.
  CREATE FUNCTION lq_reserve(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    h jsonb := p->'hold';
    d record;
  BEGIN
    -- Holds only: a database crash may lose the last ones, as it loses the requests they hold for.
    PERFORM set_config('synchronous_commit', 'off', true);
    d := lq_locked_admission(p);
    IF d.states IS NULL THEN
      RETURN '{"stale": true}';
    END IF;
    IF d.ok THEN
      INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at)
      VALUES (h->>'id', h->>'instance', h->>'user', h->>'project', h->>'key', d.tokens, d.micros, d.output_tokens,
        (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint)
      ON CONFLICT (id) DO NOTHING;
      IF NOT FOUND THEN
        RETURN '{"exists": true}';
      END IF;
      INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
      SELECT DISTINCT h->>'id', w.key, d.tokens, d.micros FROM jsonb_to_recordset(p->'budgets') AS w(key text);
    END IF;
    RETURN d.states || jsonb_build_object('ok', d.ok, 'blocking', d.blocking, 'granted', jsonb_build_array(d.tokens, d.micros, d.output_tokens));
  END $fn$;

  -- A stream's lease extension: admitted like a reservation of p.quote, then the hold grows by it
  -- (and a budget created while the request ran joins the hold). p: {holdId, subject, expiresAt}.
  CREATE FUNCTION lq_extend(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    grown_id text := p->>'holdId';
    amount_t bigint := (p->'quote'->>'tokens')::bigint;
    amount_m bigint := (p->'quote'->>'micros')::bigint;
    before holds;
    grown holds;
    d record;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO before FROM holds WHERE id = grown_id;
    IF NOT FOUND THEN
      RETURN '{"unknown": true}';
    END IF;
    -- The caller locks the scopes of the subject it believes the hold has: it must be this one.
    IF before.user_id IS DISTINCT FROM p->'subject'->>'user' OR before.project_id IS DISTINCT FROM p->'subject'->>'project'
       OR before.key_id IS DISTINCT FROM p->'subject'->>'key' THEN
      RETURN jsonb_build_object('subject', jsonb_build_object('user', before.user_id, 'project', before.project_id, 'key', before.key_id));
    END IF;
    d := lq_locked_admission(p);
    IF d.states IS NULL THEN
      RETURN '{"stale": true}';
    END IF;
    IF d.ok THEN
      -- Released or expired while this waited for the lock: nothing to grow.
      UPDATE holds SET tokens = tokens + amount_t, micros = micros + amount_m, output_tokens = output_tokens + amount_t,
        expires_at = (p->>'expiresAt')::bigint WHERE id = grown_id RETURNING * INTO grown;
      IF NOT FOUND THEN
        RETURN '{"unknown": true}';
      END IF;
      INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
      SELECT DISTINCT grown_id, w.key, amount_t, amount_m FROM jsonb_to_recordset(p->'budgets') AS w(key text)
      ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = hold_budgets.tokens + excluded.tokens, micros = hold_budgets.micros + excluded.micros;
    END IF;
    RETURN d.states || jsonb_build_object('ok', d.ok, 'blocking', d.blocking, 'hold', to_jsonb(grown));
  END $fn$;

  -- Whether settling p.added on top of these sums may fire an alert: alerts/alert-planning.ts
  -- planBudgetAlerts() reduced to "plans anything" (thresholds crossed in either unit, or a
  -- projected exhaustion before the reset), with the same integer and float8 arithmetic. p_budgets:
  -- [{i, limitTokens, limitMicros, thresholds, projectable, start, end}].
  CREATE FUNCTION lq_alerts_due(p_budgets jsonb, used_t bigint[], used_m bigint[], added_t bigint, added_m bigint, p_now bigint)
    RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    b record;
    u record;
    elapsed float8;
  BEGIN
    FOR b IN SELECT * FROM jsonb_to_recordset(p_budgets)
      AS x(i int, "limitTokens" bigint, "limitMicros" bigint, thresholds jsonb, projectable boolean, start bigint, "end" bigint) LOOP
      FOR u IN SELECT * FROM (VALUES (b."limitTokens", used_t[b.i + 1], used_t[b.i + 1] + added_t),
                                     (b."limitMicros", used_m[b.i + 1], used_m[b.i + 1] + added_m)) AS v(lim, before, after)
               WHERE v.lim IS NOT NULL LOOP
        IF u.after > u.before AND jsonb_array_length(b.thresholds) > 0 THEN
          IF u.lim <= 0 THEN
            IF u.before <= 0 THEN RETURN true; END IF;
          ELSIF EXISTS (SELECT 1 FROM jsonb_array_elements_text(b.thresholds) AS t
                        WHERE u.before * 100 < t::numeric * u.lim AND t::numeric * u.lim <= u.after * 100) THEN
            RETURN true;
          END IF;
        END IF;
        IF b.projectable AND b."end" IS NOT NULL THEN
          elapsed := p_now - b.start;
          IF elapsed >= 3600000 AND u.after < u.lim AND NOT (u.after::float8 < u.lim::float8 * 0.25)
             AND p_now + ceil(((u.lim - u.after)::float8 * elapsed) / u.after::float8) < b."end" THEN
            RETURN true;
          END IF;
        END IF;
      END LOOP;
    END LOOP;
    RETURN false;
  END $fn$;

  -- One settlement, under the scope locks its caller took: the entry (unique per request: a
  -- second settle finds the first and only clears the hold), the counters of the buckets at now,
  -- and the hold gone. Alerts are planned in TypeScript and written in the settling transaction,
  -- so when one may fire (lq_alerts_due) and p_in_transaction is false, nothing is written and
  -- {"alerts": true} asks the caller to settle again inside a transaction of its own, with
  -- p_in_transaction true, and to record the alerts before it commits. p: {scopes, fingerprint,
  -- budgets, entry}, entry holding the ledger row's columns.
  CREATE FUNCTION lq_settle_one(p jsonb, p_in_transaction boolean) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    scopes text[] := ARRAY(SELECT jsonb_array_elements_text(p->'scopes'));
    e jsonb := p->'entry';
    added_t bigint := (e->>'input_tokens')::bigint + (e->>'output_tokens')::bigint;
    added_m bigint := (e->>'cost_micros')::bigint;
    entry ledger;
    sums record;
  BEGIN
    IF lq_budget_fingerprint(scopes) IS DISTINCT FROM p->>'fingerprint' THEN
      RETURN '{"stale": true}';
    END IF;
    SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
    IF FOUND THEN
      DELETE FROM holds WHERE id = e->>'request_id';
      RETURN jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry));
    END IF;
    sums := lq_bucket_sums(p->'budgets');
    IF NOT p_in_transaction AND (added_t > 0 OR added_m > 0)
       AND lq_alerts_due(p->'budgets', lq_used(p->'budgets', sums.tokens), lq_used(p->'budgets', sums.micros),
                         added_t, added_m, (e->>'at')::bigint) THEN
      RETURN '{"alerts": true}';
    END IF;
    INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags)
    SELECT request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags
    FROM jsonb_populate_record(NULL::ledger, e)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING * INTO entry;
    IF NOT FOUND THEN
      -- Settled meanwhile under another subject's locks: the first settle stands.
      SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
      DELETE FROM holds WHERE id = e->>'request_id';
      RETURN jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry));
    END IF;
    -- A counter normally exists (lq_bucket_sums stored every bucket it read) and is added to; one
    -- deleted meanwhile (retired by an instance whose clock is ahead) is written again whole.
    INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
    SELECT w.key, w.start, w."end", w.retires, sums.tokens[w.i + 1] + added_t, sums.micros[w.i + 1] + added_m
    FROM lq_buckets(p->'budgets') AS w WHERE w.current
    ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = usage_counters.tokens + added_t, micros = usage_counters.micros + added_m;
    DELETE FROM holds WHERE id = e->>'request_id';
    RETURN jsonb_build_object('entry', to_jsonb(entry), 'tokens', sums.tokens, 'micros', sums.micros);
  END $fn$;

  -- Settlements, durable at commit (no synchronous_commit here): those that arrived together share
  -- one call and one commit (group commit). The scopes of all of them (p.scopes, in text order) are
  -- locked first, then each is settled in turn, so one settled later in the call sees the ones
  -- before it. p: {scopes, inTransaction, settles: [...]}; answers one object per settle, in order.
  CREATE FUNCTION lq_settle(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    one jsonb;
    answers jsonb := '[]';
  BEGIN
    PERFORM lq_lock_scopes(ARRAY(SELECT jsonb_array_elements_text(p->'scopes')));
    FOR one IN SELECT value FROM jsonb_array_elements(p->'settles') LOOP
      answers := answers || jsonb_build_array(lq_settle_one(one, (p->>'inTransaction')::boolean));
    END LOOP;
    RETURN answers;
  END $fn$;
`;
